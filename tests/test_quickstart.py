"""The quickstart recipe end to end on the embedded default model, inside a network namespace with NO network."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _unshare_works() -> bool:
    if shutil.which("unshare") is None:
        return False
    return subprocess.run(["unshare", "-n", "true"], capture_output=True).returncode == 0


@pytest.mark.llm
@pytest.mark.skipif(not _unshare_works(), reason="`unshare -n` is not permitted here (needs root or user namespaces)")
def test_quickstart_runs_with_no_network_and_verifies(tmp_path):
    """As the README runs it: no --run-dir, so the run goes to ./runs, a relative path (a relative run dir once failed
    every step while this test, given an absolute --run-dir, passed)."""
    medsynth = str(Path(sys.executable).with_name("medsynth"))
    cmd = ["unshare", "-n", medsynth, "run", str(ROOT / "recipes/quickstart.yaml"), "--no-cache", "--set", "steps.generate.n=8"]
    r = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    (run_dir,) = (tmp_path / "runs").iterdir()
    rep = json.loads((run_dir / "report.json").read_text())
    assert rep["status"] == "completed"
    names = [s["name"] for s in rep["steps"]]
    assert names == ["corpus", "private", "holdout", "seeds_raw", "seeds", "generate", "score", "audit", "export"]
    gen = next(s for s in rep["steps"] if s["name"] == "generate")
    assert gen["records_out"] == 8
    assert (run_dir / "report.html").exists()
    v = subprocess.run(["unshare", "-n", medsynth, "verify", str(run_dir)], cwd=ROOT, capture_output=True, text=True)
    assert v.returncode == 0, v.stdout + v.stderr
