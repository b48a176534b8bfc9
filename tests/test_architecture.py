"""The package graph is one-way (docs/architecture.md, "Layers"): checked with import-linter on the real source,
imports inside functions included. A domain library that imports the run layer, a step, or the CLI breaks it."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _lint_imports(cwd: Path) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    assert exe, "import-linter is part of the test extra: ./install.sh test"
    return subprocess.run([exe, "--no-cache"], cwd=cwd, capture_output=True, text=True, timeout=300)


def test_the_layers_contract_is_kept():
    r = _lint_imports(ROOT)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
    assert "Contracts: 1 kept, 0 broken." in r.stdout


def test_an_upward_import_breaks_the_contract(tmp_path):
    """The same configuration on a copy of the package with one domain module importing the run layer."""
    shutil.copytree(ROOT / "medsynth", tmp_path / "medsynth", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    p = tmp_path / "medsynth" / "scrub" / "surrogate.py"
    p.write_text(p.read_text(encoding="utf-8") + "\n\ndef _planted():\n    from ..recipe.engine import run_recipe  # noqa: F401\n", encoding="utf-8")
    r = subprocess.run([shutil.which("lint-imports", path=str(Path(sys.executable).parent)), "--no-cache"], cwd=tmp_path,
                       capture_output=True, text=True, timeout=300, env={"PYTHONPATH": str(tmp_path), "PATH": "/usr/bin:/bin"})
    assert r.returncode == 1 and "BROKEN" in r.stdout and "medsynth.scrub.surrogate -> medsynth.recipe.engine" in r.stdout, r.stdout[-3000:]
