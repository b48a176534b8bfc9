"""What every benchmark script shares: the checkout on ``sys.path``, the machine a figure was measured on, and
result writing (JSON with that machine block, so a number is never separated from where it was measured).

Scripts run as ``python benchmarks/bench_<name>.py``; this folder is then on ``sys.path`` and ``import harness``
works. Ratios against a baseline are measured in the same run by each script; this module only records context.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

__all__ = ["ROOT", "machine", "save"]


def machine() -> dict[str, Any]:
    """Python, CPU count, load average, torch version and threads, the medsynth commit and the time."""
    info: dict[str, Any] = {"python": platform.python_version(), "platform": platform.platform(), "cpus": os.cpu_count(),
                            "load_avg": [round(x, 2) for x in os.getloadavg()], "utc": datetime.now(UTC).isoformat(timespec="seconds")}
    try:
        import torch

        info.update(torch=torch.__version__, torch_threads=torch.get_num_threads())
    except ImportError:  # pragma: no cover - torch is a dependency
        pass
    try:
        commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True,
                               timeout=10).stdout.strip()
        info["commit"] = commit + ("+uncommitted changes" if dirty else "") if commit else None
    except (OSError, subprocess.SubprocessError):
        info["commit"] = None
    return info


def save(path: str | Path, result: Any, default: Any = str) -> Path:
    """Write ``result`` as indented JSON to ``path`` (parents created); a dict result gets a ``_machine`` block."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(result, dict):
        result = {**result, "_machine": machine()}
    p.write_text(json.dumps(result, indent=2, default=default))
    return p
