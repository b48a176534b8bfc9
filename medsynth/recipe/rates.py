"""Measured step rates of this machine, for honest ``--dry-run`` estimates.

Every step that actually runs (not cached, not resumed) records how long it took per record in
``$MEDSYNTH_HOME/cache/step_rates.json``, under a key made of the step type and the parts of its config that drive
its cost (:meth:`Step.rate_key`: for ``generate`` the model, backend, task, strategies, token limit and batch size).
The dry-run estimates a step from the latest measurement with the same key, scaled by the number of records; a
``generate`` step never measured here is calibrated once (one real batch on the configured model, tokens/s cached).
Each estimate says how it was obtained; one with no measurement says that it is a guess.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from filelock import FileLock

__all__ = ["rates_file", "record_rate", "lookup_rate", "rate_id"]


def rates_file(home: Path) -> Path:
    return Path(home) / "cache" / "step_rates.json"


def rate_id(step: Any) -> str:
    key = step.rate_key()
    return f"{step.config.type}:" + hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _load(p: Path) -> dict[str, Any]:
    try:
        d = json.loads(p.read_text(encoding="utf-8"))
        return d if isinstance(d, dict) else {}
    except (OSError, ValueError, UnicodeDecodeError):
        return {}


def _update(home: Path, key: str, entry: dict[str, Any]) -> None:
    p = rates_file(home)
    p.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(p) + ".lock"):
        d = _load(p)
        d[key] = entry
        fd, tmp = tempfile.mkstemp(dir=p.parent, suffix=".tmp")
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(d, fh, indent=1)
        os.replace(tmp, p)


def record_rate(home: Path, step: Any, seconds: float, records_in: int | None, records_out: int | None, run_id: str) -> None:
    """Remember one measured run of ``step`` (seconds per record of its rate unit)."""
    n = records_out if (step.rate_unit == "records_out" or not records_in) else records_in
    if not n or seconds <= 0:
        return
    _update(home, rate_id(step), {"kind": "measured", "seconds_per_record": seconds / n, "records": n, "seconds": round(seconds, 2),
                                  "unit": step.rate_unit, "run_id": run_id, "at": datetime.now(UTC).isoformat(timespec="seconds")})


def record_calibration(home: Path, step: Any, result: dict[str, Any], seconds: float) -> None:
    _update(home, rate_id(step) + ":calibration", {"kind": "calibration", **result, "seconds": round(seconds, 2),
                                                   "at": datetime.now(UTC).isoformat(timespec="seconds")})


def lookup_rate(home: Path, step: Any, calibration: bool = False) -> dict[str, Any] | None:
    return _load(rates_file(home)).get(rate_id(step) + (":calibration" if calibration else ""))


