"""`python -m medsynth.cli`: the same as the `medsynth` command."""

from . import main

main()
