"""The recipe engine: runs validated steps over a run directory with caching, resume, provenance and a report.

Caching: each step's outputs are stored under ``$MEDSYNTH_HOME/cache/steps/<key>/`` where the key hashes
(step type, step version, config, input dataset hashes, recipe seed, medsynth version, step-specific extras such
as model sha256). Resume: a step whose ledger row is ``done`` with the same key is skipped; a step that was
interrupted re-runs, and its batched work skips every committed batch.

Why over 500 lines: the run loop, its step context and the cache/resume protocol are one transaction model
(a step's outputs, quarantine and figures commit together); reporting, manifest and signing are elsewhere.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import platform
import shutil
import sys
import time
import traceback
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml
from rich.console import Console

from .. import __version__
from ..audit.report import render_html
from ..audit.sign import public_key_pem, sign_manifest
from ..data.io import hash_and_count_lines, read_records, sha256_file, write_records
from ..data.records import Record
from ..exceptions import AuditFailedError, MedsynthError, RecipeError
from ..paths import check_name, confined
from ..paths import home as medsynth_home
from .progress import ProgressHandle, make_progress
from .rundir import MANIFEST_FILES, RunDir
from .schema import LoadedRecipe, load_recipe
from .step import Step, StepConfig

__all__ = ["StepContext", "RunResult", "run_recipe", "make_test_context", "plan_recipe", "medsynth_home", "sha256_file", "new_run_id"]

log = logging.getLogger("medsynth")


def new_run_id(name: str) -> str:
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    return f"{name}-{stamp}-{os.urandom(3).hex()}"


def _json_default(o: Any) -> Any:
    if isinstance(o, Path):
        return str(o)
    if hasattr(o, "item"):
        return o.item()
    if hasattr(o, "tolist"):
        return o.tolist()
    if hasattr(o, "model_dump"):
        return o.model_dump()
    return str(o)


class StepContext:
    """What a step's ``run(ctx)`` gets. See medsynth/recipe/step.py and docs/architecture.md."""

    def __init__(self, *, step: Step, name: str, index: int, rundir: RunDir, datasets: dict[str, Path], input_names: list[str],
                 output_name: str, seed: int, recipe: LoadedRecipe | None, progress: Any = None, home: Path | None = None,
                 run_id: str = "test"):
        self.step = step
        self.step_name = name
        self.index = index
        self.rundir = rundir
        self.run_dir = rundir.path
        self.step_dir = rundir.step_dir(index, name)
        self.seed = seed
        self.recipe = recipe
        self.run_id = run_id
        self.home = home or medsynth_home()
        self.log = logging.getLogger(f"medsynth.step.{name}")
        self._datasets = datasets
        self._input_names = input_names
        self._output_name = output_name
        self._outputs: dict[str, Path] = {}
        self._progress = progress
        self._current_batch: int | None = None
        self.figures: list[dict[str, Any]] = []
        self.sections: dict[str, Any] = {}
        self.artifacts: list[Path] = []
        self.models: dict[str, str] = {}
        self.quarantined: list[dict[str, Any]] = []
        self._cache: dict[str, list[Record]] = {}

    # -- data ------------------------------------------------------------------------------------------
    @property
    def input_names(self) -> list[str]:
        return list(self._input_names)

    def dataset(self, name: str) -> list[Record]:
        if name not in self._datasets:
            raise RecipeError(f"Step '{self.step_name}' asked for dataset '{name}', which no earlier step produced. "
                              f"Available: {', '.join(sorted(self._datasets)) or '(none)'}.")
        if name not in self._cache:
            self._cache[name] = read_records(self._datasets[name])
        return self._cache[name]

    def has_dataset(self, name: str) -> bool:
        return name in self._datasets

    def inputs(self) -> dict[str, list[Record]]:
        return {n: self.dataset(n) for n in self._input_names}

    def input(self) -> list[Record]:
        if not self._input_names:
            raise RecipeError(f"Step '{self.step_name}' needs an input dataset; set `input:` in the recipe.")
        return self.dataset(self._input_names[0])

    def write_output(self, records: list[Record], name: str | None = None) -> Path:
        name = check_name(name or self._output_name, "a dataset name")
        path = confined(self.step_dir, f"{name}.jsonl")
        write_records(records, path)
        self._outputs[name] = path
        self._cache[name] = list(records)
        return path

    # -- batches (resume) ------------------------------------------------------------------------------
    def pending_batches(self, n_batches: int) -> Iterator[int]:
        done = self.rundir.committed_batches(self.step_name)
        for i in range(n_batches):
            if i in done:
                continue
            self._current_batch = i
            yield i
        self._current_batch = None

    def commit_batch(self, i: int, records: list[Record], meta: dict[str, Any] | None = None) -> None:
        self.rundir.commit_batch(self.step_name, i, records, meta)
        qs = [q for q in self.quarantined if q.get("batch") == i]
        if qs:
            with open(self._quarantine_partial(), "a", encoding="utf-8") as fh:
                for q in qs:
                    fh.write(json.dumps(q, default=_json_default) + "\n")

    def committed(self) -> list[Record]:
        return self.rundir.batch_records(self.step_name)

    def committed_meta(self) -> dict[int, dict[str, Any]]:
        return self.rundir.batch_meta(self.step_name)

    def n_committed(self) -> int:
        return len(self.rundir.committed_batches(self.step_name))

    # -- quarantine, figures, artifacts ----------------------------------------------------------------
    def _quarantine_partial(self) -> Path:
        return self.step_dir / ".quarantine_batches.jsonl"

    def quarantine(self, record: Record, reason: str, source: str | None = None) -> None:
        """Keep a failing record (in the run dir only) with the reason. Never logged."""
        self.quarantined.append({"step": self.step_name, "source": source or self.step_name, "reason": reason,
                                 "batch": self._current_batch, "record": record.model_dump(mode="json")})

    def add_figure(self, name: str, value: Any, how: str, **extra: Any) -> None:
        if not how:
            raise ValueError("every figure must say how it was obtained (`how`)")
        self.figures.append({"name": name, "value": value, "how": how, **extra})

    def add_section(self, key: str, obj: Any) -> None:
        self.sections[key] = obj

    def add_artifact(self, path: str | Path) -> None:
        self.artifacts.append(Path(path))

    def add_model(self, name: str, sha256: str) -> None:
        self.models[name] = sha256

    def progress(self, total: int | None, description: str | None = None, unit: str = "records", completed: int = 0) -> ProgressHandle:
        return ProgressHandle(self._progress, total, description or self.step_name, unit, completed)

    # -- finalisation (engine) -------------------------------------------------------------------------
    def _finalize(self) -> dict[str, Any]:
        # quarantined records: committed batches (persisted as they were committed) + the non-batched ones now
        qpath = self.run_dir / "quarantine" / f"{self.index:02d}_{self.step_name}.jsonl"
        rows: list[str] = []
        part = self._quarantine_partial()
        if part.exists():
            rows += [ln for ln in part.read_text(encoding="utf-8").splitlines() if ln.strip()]
            part.unlink()
        rows += [json.dumps(q, default=_json_default) for q in self.quarantined if q.get("batch") is None]
        if rows:
            qpath.write_text("\n".join(rows) + "\n", encoding="utf-8")
        elif qpath.exists():
            qpath.unlink()
        reasons: dict[str, int] = {}
        for r in rows:
            q = json.loads(r)
            reasons[q["reason"]] = reasons.get(q["reason"], 0) + 1
        info = {"figures": self.figures, "sections": self.sections, "quarantined": len(rows), "quarantine_reasons": reasons,
                "outputs": {k: str(v.relative_to(self.run_dir)) for k, v in self._outputs.items()},
                "artifacts": [str(Path(a).resolve().relative_to(self.run_dir.resolve())) if Path(a).resolve().is_relative_to(self.run_dir.resolve()) else str(a) for a in self.artifacts],
                "models": self.models}
        (self.step_dir / "step.json").write_text(json.dumps(info, indent=2, default=_json_default), encoding="utf-8")
        return info


@dataclass
class RunResult:
    run_id: str
    run_dir: Path
    status: str
    report_json: Path | None = None
    report_html: Path | None = None
    seconds: float = 0.0
    steps: list[dict[str, Any]] = field(default_factory=list)


def _step_seed(recipe_seed: int, name: str) -> int:
    return int.from_bytes(hashlib.sha256(f"{recipe_seed}:{name}".encode()).digest()[:4], "big")


def _cache_key(step: Step, recipe_seed: int, input_hashes: dict[str, str], outputs: list[str] | None = None) -> str:
    cfg = step.config.model_dump(mode="json", exclude={"name"})
    payload = {"type": step.config.type, "outputs": outputs or [], "version": step.version, "config": cfg, "inputs": input_hashes, "seed": recipe_seed,
               "medsynth": __version__, "extra": step.cache_key_extra()}
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=_json_default).encode()).hexdigest()


def plan_recipe(loaded: LoadedRecipe, home: Path | None = None, calibrate: bool = False) -> list[dict[str, Any]]:
    """The dry-run plan: steps, records per step, estimated tokens and time, privacy budget to spend.

    Time: from this machine's latest measured run of a step with the same cost key, scaled by records
    (medsynth/recipe/rates.py); else, with ``calibrate``, from a one-batch calibration of the step (cached); else
    the step's own guess. ``how_estimated`` says which."""
    from .rates import lookup_rate, record_calibration

    home = Path(home) if home else medsynth_home()
    sizes: dict[str, int | None] = {}
    rows = []
    for st, name, (ins, outs) in zip(loaded.steps, loaded.names, loaded.wiring(), strict=True):
        outname = outs[0]
        plan = st.plan({i: sizes.get(i) for i in ins})
        sizes[outname] = plan.records_out
        est, how = plan.est_seconds, "guess (no run of this step measured on this machine)" if plan.est_seconds else "unknown"
        n = plan.records_out if (st.rate_unit == "records_out" or not plan.records_in) else plan.records_in
        measured = lookup_rate(home, st)
        if measured and n:
            est = measured["seconds_per_record"] * n
            how = (f"measured on this machine: {measured['seconds_per_record']:.2f} s per record over {measured['records']} records "
                   f"(run {measured['run_id']}, {measured['at'][:10]}) × {n}")
        elif plan.est_tokens:
            cal = lookup_rate(home, st, calibration=True)
            if (cal is None or "kinds" not in cal) and calibrate:
                t0 = time.time()
                result = st.calibrate(home)
                if result:
                    record_calibration(home, st, result, time.time() - t0)
                    cal = lookup_rate(home, st, calibration=True)
            if cal and "kinds" in cal:
                est, parts = st.estimate_from_calibration(cal)
                how = (f"calibrated on this machine ({cal['at'][:10]}): {parts}; prompts shaped like the step's, 5 sentences per "
                       "entity-first document, rejections and retries beyond 15 % not modelled")
        rows.append({"step": name, "type": st.config.type, "inputs": ins, "output": outname, "records_in": plan.records_in,
                     "records_out": plan.records_out, "est_tokens": plan.est_tokens, "est_seconds": est, "how_estimated": how,
                     "epsilon": plan.epsilon, "delta": plan.delta, "budget": plan.budget or (loaded.config.privacy.budget if plan.epsilon else None),
                     "notes": [n for n in plan.notes if not (n.startswith("GUESS") and not how.startswith("guess"))]})
    return rows


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version(), "platform": platform.platform(), "medsynth": __version__}
    for pkg in ["torch", "transformers", "presidio-analyzer", "spacy", "opacus", "scikit-learn", "diffusers", "monai", "numpy", "pandas"]:
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            pass
    return out


def write_manifest(run_dir: Path, extra: dict[str, Any] | None = None) -> Path:
    """Hash every file of the run dir except the manifest and its signature into manifest.json."""
    run_dir = Path(run_dir)
    files = {}
    for p in sorted(run_dir.rglob("*")):
        if not p.is_file():
            continue
        rel = p.relative_to(run_dir).as_posix()
        if rel in MANIFEST_FILES:
            continue
        files[rel] = {"sha256": sha256_file(p), "size": p.stat().st_size}
    manifest = {"format": "medsynth-manifest/1", "created_at": datetime.now(UTC).isoformat(timespec="seconds"), "files": files, **(extra or {})}
    path = run_dir / "manifest.json"
    path.write_text(json.dumps(manifest, indent=2, sort_keys=True, default=_json_default), encoding="utf-8")
    return path


def run_recipe(loaded: LoadedRecipe | str | Path, *, overrides: list[str] | None = None, run_dir: str | Path | None = None,
               resume: str | None = None, runs_root: str | Path = "runs", use_cache: bool = True,
               console: Console | None = None, show_progress: bool = True) -> RunResult:
    """Run a recipe end to end. Raises RecipeError (before compute), AuditFailedError (gate), MedsynthError."""
    if not isinstance(loaded, LoadedRecipe):
        loaded = load_recipe(loaded, overrides)
    console = console or Console(stderr=True)
    home = medsynth_home()
    from ..envcheck import set_offline_defaults

    set_offline_defaults()

    if resume:
        rp = Path(resume)
        path = rp if rp.exists() else Path(runs_root) / resume
        if not (path / "ledger.sqlite").exists():
            raise RecipeError(f"Cannot resume '{resume}': no run directory with a ledger at {path}. List runs with `ls {runs_root}`.")
        _check_same_recipe(path, loaded)  # before anything in the run dir is opened or changed
        rd = RunDir(path)
        run_id = rd.get_meta("run_id", path.name)
    else:
        path = Path(run_dir) if run_dir else Path(runs_root) / new_run_id(loaded.config.name)
        rd = RunDir(path)
        run_id = rd.get_meta("run_id") or path.name
    rd.acquire()
    t0 = time.time()
    status = "running"
    step_infos: list[dict[str, Any]] = []
    datasets: dict[str, Path] = {}
    dataset_info: dict[str, tuple[str, int]] = {}  # name -> (sha256, records), measured once when a step finishes
    error: BaseException | None = None
    try:
        rd.set_meta("run_id", run_id)
        if rd.get_meta("created_at") is None:
            rd.set_meta("created_at", datetime.now(UTC).isoformat(timespec="seconds"))
        (rd.path / "recipe.yaml").write_text(yaml.safe_dump(loaded.raw, sort_keys=False), encoding="utf-8")
        progress = make_progress(console) if show_progress else None
        if progress:
            progress.start()
        try:
            for idx, (st, name, (ins, outs)) in enumerate(zip(loaded.steps, loaded.names, loaded.wiring(), strict=True)):
                info = _run_one(st, idx, name, ins, outs, loaded, rd, datasets, dataset_info, home, run_id, progress, use_cache, console)
                step_infos.append(info)
        finally:
            if progress:
                progress.stop()
        status = "completed"
    except AuditFailedError as e:
        status, error = "blocked", e
    except KeyboardInterrupt as e:
        status, error = "interrupted", e
    except MedsynthError as e:
        status, error = "failed", e
    except Exception as e:  # unexpected: keep type + location, not the message (it could contain data)
        status, error = "failed", e
    seconds = time.time() - t0
    try:
        versions = _versions()
        report = _assemble_report(loaded, rd, run_id, status, step_infos, datasets, dataset_info, seconds, error, home, versions)
        rj = rd.path / "report.json"
        rj.write_text(json.dumps(report, indent=2, default=_json_default), encoding="utf-8")
        rh = rd.path / "report.html"
        rh.write_text(render_html(report), encoding="utf-8")
        rd.set_meta("status", status)
        rd.close()
        write_manifest(rd.path, {"run_id": run_id, "status": status, "versions": versions, "models": report.get("models", {})})
        sign_manifest(rd.path / "manifest.json", home)
    finally:
        rd.release()
    result = RunResult(run_id=run_id, run_dir=rd.path, status=status, report_json=rj, report_html=rh, seconds=seconds, steps=step_infos)
    if error is not None:
        if isinstance(error, KeyboardInterrupt):
            raise error
        if not isinstance(error, MedsynthError):
            error = MedsynthError(f"Step failed with an unexpected {type(error).__name__} (details in {rd.path}/report.json). "
                                  "Resume after fixing the cause.").with_traceback(error.__traceback__)
        error.resume_run = str(rd.path)  # type: ignore[attr-defined]  # the CLI's resume hint names this run
        raise error
    return result


def _check_same_recipe(path: Path, loaded: LoadedRecipe) -> None:
    """Refuse to resume a run with a recipe other than the one it was started with (its steps, cache keys and report
    would no longer describe one run). Compares the resolved recipes (after ``--set``)."""
    stored = path / "recipe.yaml"
    if not stored.exists():
        return  # killed before the recipe was written: nothing to compare with
    try:
        old = yaml.safe_load(stored.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError, OSError):
        raise RecipeError(f"Cannot resume {path}: its recipe.yaml is unreadable, so the run cannot be matched to this recipe. "
                          "Start a new run instead.") from None
    new = json.loads(json.dumps(loaded.raw, default=str))
    old = json.loads(json.dumps(old, default=str))
    if old == new:
        return
    diffs: list[str] = []
    for k in sorted(set(old or {}) | set(new)):
        if k == "steps":
            a, b = (old or {}).get("steps") or [], new.get("steps") or []
            diffs += [f"steps.{i}" for i in range(max(len(a), len(b))) if (a[i] if i < len(a) else None) != (b[i] if i < len(b) else None)]
        elif (old or {}).get(k) != new.get(k):
            diffs.append(k)
    raise RecipeError(f"Cannot resume {path} with a different recipe: it differs from the run's recipe.yaml at "
                      f"{', '.join(diffs[:12])}{' …' if len(diffs) > 12 else ''}. Resume with the same recipe and --set "
                      "overrides, or start a new run (unchanged steps are taken from the cache).")


def _run_one(st: Step, idx: int, name: str, ins: list[str], outs: list[str], loaded: LoadedRecipe, rd: RunDir,
             datasets: dict[str, Path], dataset_info: dict[str, tuple[str, int]], home: Path, run_id: str, progress: Any,
             use_cache: bool, console: Console) -> dict[str, Any]:
    outname = outs[0]
    input_hashes = {n: dataset_info[n][0] for n in ins}
    key = _cache_key(st, loaded.config.seed, input_hashes, outs)
    row = rd.step_row(name)
    step_dir = rd.step_dir(idx, name)
    t0 = time.time()
    cached = False
    outputs_present = (step_dir / f"{outname}.jsonl").exists() and (step_dir / "step.json").exists()
    cache_dir = home / "cache" / "steps" / key
    if row and row["status"] == "done" and row["cache_key"] == key and outputs_present:
        cached = True
        how = "resumed"
    elif use_cache and (cache_dir / "step.json").exists():
        _copy_from_cache(cache_dir, step_dir)
        rd.start_step(idx, name, st.config.type, key)
        rd.finish_step(name, "done")
        cached = True
        how = "cache"
    else:
        how = "ran"
        rd.start_step(idx, name, st.config.type, key)
        ctx = StepContext(step=st, name=name, index=idx, rundir=rd, datasets=dict(datasets), input_names=ins, output_name=outname,
                          seed=_step_seed(loaded.config.seed, name), recipe=loaded, progress=progress, home=home, run_id=run_id)
        log.info("step %s (%s) started", name, st.config.type)
        try:
            st.run(ctx)
        except BaseException as e:
            if isinstance(e, AuditFailedError):
                ctx._finalize()
                rd.finish_step(name, "blocked", f"{type(e).__name__}")
            else:
                rd.finish_step(name, "failed", f"{type(e).__name__}: {e}" if isinstance(e, MedsynthError) else type(e).__name__)
            raise
        if outname not in ctx._outputs:
            rd.finish_step(name, "failed", "no output")
            raise MedsynthError(f"Step '{name}' ({st.config.type}) finished without writing its output dataset '{outname}'. This is a bug in the step.")
        ctx._finalize()
        rd.finish_step(name, "done")
        rd.clear_batches(name)
        if use_cache:
            _store_in_cache(step_dir, cache_dir)
    info = json.loads((step_dir / "step.json").read_text(encoding="utf-8"))
    for o in outs:
        p = step_dir / f"{o}.jsonl"
        if p.exists():
            datasets[o] = p
            dataset_info[o] = hash_and_count_lines(p)
    n_out = dataset_info[outname][1]
    if how == "ran" and row is None:  # a fresh, complete run of the step (a resumed one did only part of the work)
        from .rates import record_rate

        n_in = sum(dataset_info[i][1] for i in ins if i in dataset_info) if ins else None
        try:
            record_rate(home, st, time.time() - t0, n_in, n_out, run_id)
        except OSError:
            log.warning("could not record the measured rate of step %s (dry-run estimates stay unmeasured)", name)
    info.update({"name": name, "type": st.config.type, "index": idx, "cache_key": key, "how": how, "cached": cached,
                 "seconds": round(time.time() - t0, 3), "records_out": n_out, "inputs": ins, "output": outname,
                 "config": st.config.model_dump(mode="json")})
    if progress is None:
        console.print(f"step {name}: {how}, {n_out} records")
    else:
        console.print(f"[green]✓[/] {name} ({st.config.type}): {n_out} records, {how}, {info['seconds']:.1f}s")
    return info


def _store_in_cache(step_dir: Path, cache_dir: Path) -> None:
    """Copy a finished step folder into the cache atomically, safe against other processes sharing MEDSYNTH_HOME:
    each writer fills its own temporary folder, then renames it into place; a cache entry once in place is never
    replaced or removed (the first writer wins, the others discard their copy: both hold the same step output)."""
    import tempfile

    cache_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=cache_dir.name + ".tmp-", dir=cache_dir.parent))
    try:
        shutil.copytree(step_dir, tmp, dirs_exist_ok=True)
        try:
            os.rename(tmp, cache_dir)  # atomic; fails if another process already stored this key
        except OSError:
            if not (cache_dir / "step.json").exists():
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def _copy_from_cache(cache_dir: Path, step_dir: Path) -> None:
    if step_dir.exists():
        shutil.rmtree(step_dir)
    shutil.copytree(cache_dir, step_dir)


def _assemble_report(loaded: LoadedRecipe, rd: RunDir, run_id: str, status: str, steps: list[dict[str, Any]], datasets: dict[str, Path],
                     dataset_info: dict[str, tuple[str, int]], seconds: float, error: BaseException | None, home: Path,
                     versions: dict[str, str]) -> dict[str, Any]:
    # a step that failed/blocked has no info in `steps`; take its status (and step.json, if written) from the ledger
    ledger_steps = {r["name"]: r for r in rd.steps()}
    done_names = {s["name"] for s in steps}
    steps = list(steps)
    for name in loaded.names:
        if name not in done_names and name in ledger_steps:
            r = ledger_steps[name]
            entry = {"name": name, "type": r["type"], "status": r["status"], "error": r["error"]}
            p = rd.path / "steps" / f"{r['idx']:02d}_{name}" / "step.json"
            if p.exists():
                entry.update(json.loads(p.read_text(encoding="utf-8")))
            steps.append(entry)
    models: dict[str, str] = {}
    quarantine: dict[str, Any] = {"total": 0, "by_reason": {}, "by_step": {}}
    for s in steps:
        models.update(s.get("models", {}))
        q = s.get("quarantined", 0)
        quarantine["total"] += q
        if q:
            quarantine["by_step"][s["name"]] = q
        for r, n in s.get("quarantine_reasons", {}).items():
            quarantine["by_reason"][r] = quarantine["by_reason"].get(r, 0) + n
    err = None
    if error is not None:
        err = {"type": type(error).__name__,
               "message": str(error) if isinstance(error, MedsynthError) else "unexpected error (see traceback location)",
               "where": (lambda fr: f"{fr.filename.split('site-packages/')[-1]}:{fr.lineno} in {fr.name}")(traceback.extract_tb(error.__traceback__)[-1]) if error.__traceback__ else None}
    return {
        "format": "medsynth-report/1",
        "run_id": run_id,
        "recipe": loaded.config.name,
        "description": loaded.config.description,
        "seed": loaded.config.seed,
        "status": status,
        "created_at": rd.get_meta("created_at"),
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "seconds": round(seconds, 2),
        "medsynth_version": __version__,
        "versions": versions,
        "steps": steps,
        "datasets": {k: {"path": str(v.relative_to(rd.path)), "sha256": dataset_info[k][0], "records": dataset_info[k][1]} for k, v in datasets.items()},
        "models": models,
        "quarantine": quarantine,
        "error": err,
        "public_key": public_key_pem(home),
        "python": sys.version.split()[0],
    }


def make_test_context(tmp_path: str | Path, datasets: dict[str, list[Record]] | None = None, inputs: list[str] | None = None,
                      seed: int = 0, step: Step | None = None, name: str = "test", output: str | None = None,
                      home: str | Path | None = None) -> StepContext:
    """A real StepContext over a real run dir in ``tmp_path`` for unit tests of steps."""
    tmp_path = Path(tmp_path)
    rd = RunDir(tmp_path / "run")
    paths = {}
    for n, recs in (datasets or {}).items():
        p = tmp_path / "datasets" / f"{n}.jsonl"
        write_records(recs, p)
        paths[n] = p
    if step is None:
        class _Dummy(Step):
            type = "test"

            def run(self, ctx: StepContext) -> None:  # pragma: no cover
                pass

        step = _Dummy(StepConfig(type="test"))
    return StepContext(step=step, name=name, index=0, rundir=rd, datasets=paths, input_names=list(inputs or list(paths)[:1]),
                       output_name=output or name, seed=seed, recipe=None, progress=None,
                       home=Path(home) if home else tmp_path / "home")
