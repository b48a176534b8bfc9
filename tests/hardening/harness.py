"""Run the `medsynth` command line in-process, as `medsynth.cli.main` would, and classify how it ended.

An outcome is a *traceback* when an exception other than a MedsynthError (which `main` turns into exit 2 with its
message) or SystemExit escapes the command: that is a defect, whatever the input. `main` also has a last-resort
handler that prints ``UNEXPECTED`` instead of a traceback; tests treat that as a defect too.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

__all__ = ["CliOutcome", "run_cli", "ROOT"]

ROOT = Path(__file__).resolve().parents[2]
_BOX = str.maketrans({c: " " for c in "│╭╰─╮╯"})


@dataclass
class CliOutcome:
    code: int
    out: str
    err: str
    crash: str | None  # the exception type that escaped (a traceback in a real terminal), or None

    @property
    def text(self) -> str:
        """stdout + stderr with rich's line wrapping and error-panel borders undone."""
        return " ".join((self.out + "\n" + self.err).translate(_BOX).split())

    @property
    def clean(self) -> bool:
        """Exit 0/1/2, no traceback, no last-resort 'unexpected internal error'."""
        from medsynth.cli import UNEXPECTED

        return self.crash is None and self.code in (0, 1, 2) and "Traceback" not in self.out + self.err and UNEXPECTED not in self.text


def run_cli(*args: object, env: dict[str, str] | None = None, input: str | None = None) -> CliOutcome:
    from typer.testing import CliRunner

    from medsynth.cli import app
    from medsynth.exceptions import MedsynthError

    old = {k: os.environ.get(k) for k in (env or {})}
    try:
        r = CliRunner().invoke(app, [str(a) for a in args], env=env, input=input, terminal_width=400)
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    exc = r.exception
    if exc is None or isinstance(exc, SystemExit):
        return CliOutcome(r.exit_code, r.stdout, r.stderr, None)
    if isinstance(exc, MedsynthError):
        return CliOutcome(2, r.stdout, r.stderr + "\n" + str(exc), None)
    return CliOutcome(1, r.stdout, r.stderr, type(exc).__name__)
