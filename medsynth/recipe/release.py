"""``medsynth release RUN --out DIR``: the release bundle, separate from the run.

A run directory holds everything — the private and holdout sets, the PHI strings the scrubber found, the budget
ledger, quarantined records — and must stay inside the building. The bundle holds only what may leave:

- ``data/``: the export step's files (JSONL, CoNLL + side file, BRAT, spaCy, HF), copied byte for byte;
- ``report.json`` / ``report.html``: the *public* report — figures, verdicts, plots, model hashes — without record
  ids of findings, private record ids, dataset paths or the recipe's file paths;
- ``dataset_card.md``: a Hugging Face dataset card (what the data is, how it was made, labels, spans, quality,
  audits with verdicts, ε spent, known limitations, intended use);
- ``manifest.json``: every file of the bundle with its sha256, the signer's identity (name, role, key fingerprint),
  the source run (id, the sha256 of its own signed manifest), the release verdict and, if the gate did not pass, the
  ``--force`` reason; ``manifest.sig``: its Ed25519 signature.

``medsynth verify DIR`` checks a bundle exactly as it checks a run (every file listed, hashes, a trusted signer).
The privacy officer's decision is a separate signed addendum, ``sign_off.json`` + ``sign_off.sig`` (``medsynth
sign-off DIR``), bound to the sha256 of ``manifest.json``: the maker's signature stays valid and any later change
of the bundle invalidates the sign-off. ``verify`` checks it when present.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from ..data.io import sha256_file
from ..exceptions import MedsynthError
from ..paths import find_step_dir

__all__ = ["make_release", "signer_identity", "set_signer_identity", "sign_off", "public_report", "dataset_card", "SIGN_OFF_FILES"]

SIGN_OFF_FILES = ("sign_off.json", "sign_off.sig")
_PRIVATE_KEYS = {"findings", "record_id", "private_id", "seed_record_ids", "path", "paths", "run_dir", "input_path", "phi_strings"}


def _identity_file(home: Path) -> Path:
    return Path(home) / "signer.yaml"


def set_signer_identity(home: Path, name: str, role: str, organisation: str = "") -> dict[str, str]:
    name, role = name.strip(), role.strip()
    if not name or not role:
        raise MedsynthError("A signer identity needs a name and a role, e.g. `medsynth keys identity --name 'Dana Reyes' --role 'data engineer'`.")
    ident = {"name": name, "role": role, "organisation": organisation.strip()}
    p = _identity_file(home)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(yaml.safe_dump(ident, sort_keys=False), encoding="utf-8")
    return ident


def signer_identity(home: Path) -> dict[str, str]:
    """Name, role (and organisation) of whoever signs with this machine's key, plus the key's fingerprint."""
    from ..audit.sign import key_fingerprint, public_key_pem

    p = _identity_file(home)
    fix = "Set it once with `medsynth keys identity --name 'Your Name' --role 'your role'` (stored in $MEDSYNTH_HOME/signer.yaml)."
    if not p.exists():
        raise MedsynthError(f"No signer identity is configured, so a release could not say who signed it. {fix}")
    try:
        ident = yaml.safe_load(p.read_text(encoding="utf-8"))
        if not isinstance(ident, dict) or not str(ident.get("name", "")).strip() or not str(ident.get("role", "")).strip():
            raise ValueError
    except (ValueError, yaml.YAMLError, UnicodeDecodeError):
        raise MedsynthError(f"{p} is not a valid signer identity (it needs `name:` and `role:`). {fix}") from None
    return {"name": str(ident["name"]), "role": str(ident["role"]), "organisation": str(ident.get("organisation") or ""),
            "key_fingerprint": key_fingerprint(public_key_pem(home))}


def _scrub(obj: Any) -> Any:
    """Drop keys that could carry record ids or file paths from a report fragment (recursively)."""
    if isinstance(obj, dict):
        return {k: _scrub(v) for k, v in obj.items() if k not in _PRIVATE_KEYS}
    if isinstance(obj, list):
        return [_scrub(v) for v in obj]
    return obj


def public_report(rep: dict[str, Any]) -> dict[str, Any]:
    """The part of a run's report that may leave with the data: figures, verdicts, plots, model hashes and counts."""
    keep_step = ("name", "type", "status", "records_in", "records_out", "seconds", "how", "figures", "sections", "models", "quarantined",
                 "quarantine_reasons", "version")
    steps = [_scrub({k: s[k] for k in keep_step if k in s}) for s in rep.get("steps", []) if isinstance(s, dict)]
    return {"format": "medsynth-public-report/1", "run_id": rep.get("run_id"), "recipe": rep.get("recipe"), "description": rep.get("description", ""),
            "status": rep.get("status"), "created_at": rep.get("created_at"), "finished_at": rep.get("finished_at"), "seconds": rep.get("seconds"),
            "medsynth_version": rep.get("medsynth_version"), "versions": rep.get("versions", {}), "steps": steps,
            "datasets": {k: {"records": v.get("records")} for k, v in (rep.get("datasets") or {}).items() if isinstance(v, dict)},
            "models": rep.get("models", {}), "quarantine": {"total": (rep.get("quarantine") or {}).get("total", 0),
                                                            "by_reason": (rep.get("quarantine") or {}).get("by_reason", {})},
            "public_key": rep.get("public_key")}


def _audit_summary(rep: dict[str, Any]) -> dict[str, Any] | None:
    for s in rep.get("steps", []):
        if isinstance(s, dict) and isinstance(s.get("sections"), dict) and isinstance(s["sections"].get("audit_summary"), dict):
            return s["sections"]["audit_summary"]
    return None


def _export_dir(run_dir: Path, rep: dict[str, Any]) -> Path:
    exports = [s for s in rep.get("steps", []) if isinstance(s, dict) and s.get("type") == "export"]
    if not exports:
        raise MedsynthError(f"{run_dir} has no export step, so there is nothing to release. Add one to the recipe "
                            "(`- {type: export, formats: [jsonl, conll, brat, spacy, hf]}` after the audit step) and resume the run.")
    name = exports[-1]["name"]
    step = find_step_dir(run_dir, name)
    dirs = [step / "export"] if step is not None and (step / "export").is_dir() else []
    if not dirs or not any(dirs[-1].iterdir()):
        raise MedsynthError(f"{run_dir}: the export step '{name}' has no files (did it finish?). Resume the run: `medsynth run RECIPE --resume {run_dir}`.")
    return dirs[-1]


def _figs(rep: dict[str, Any]) -> dict[str, Any]:
    return {f["name"]: f["value"] for s in rep.get("steps", []) if isinstance(s, dict) for f in s.get("figures", []) if isinstance(f, dict)}


def dataset_card(rep: dict[str, Any], records: list[Any], signer: dict[str, str], verdict: str, forced: str | None) -> str:
    """A Hugging Face dataset card (YAML front matter + sections) from the public report and the released records."""
    n = len(records)
    labels = Counter(lab for r in records for lab in r.labels)
    spans = Counter(s.label for r in records for s in r.spans)
    rels = Counter(x.label for r in records for x in r.relations)
    size = "n<1K" if n < 1000 else "1K<n<10K" if n < 10_000 else "10K<n<100K" if n < 100_000 else "n>100K"
    tasks = (["token-classification"] if spans else []) + (["text-classification"] if labels else [])
    figs = _figs(rep)
    audit = _audit_summary(rep) or {}
    gen = [s for s in rep.get("steps", []) if isinstance(s, dict) and s.get("type") == "generate"]
    front = {"pretty_name": f"medsynth synthetic data: {rep.get('recipe')}", "language": ["en"], "license": "other",
             "size_categories": [size], "task_categories": tasks or ["text-generation"], "tags": ["synthetic", "clinical", "medsynth"],
             "annotations_creators": ["machine-generated"], "source_datasets": ["original"]}
    out = ["---", yaml.safe_dump(front, sort_keys=False).strip(), "---", "", f"# Dataset card: {rep.get('recipe')}", "",
           f"{rep.get('description') or ''}", "",
           "## Dataset description",
           f"- **What it is**: {n} synthetic, machine-labelled clinical texts written by a local language model from scrubbed seed "
           "records, with entity spans verified against the text (`text[start:end] == span.text`), relations and document labels.",
           f"- **Made by**: {signer['name']} ({signer['role']}{', ' + signer['organisation'] if signer.get('organisation') else ''}), "
           f"signing key {signer['key_fingerprint']}; medsynth {rep.get('medsynth_version')}, run `{rep.get('run_id')}` "
           f"({rep.get('created_at')} → {rep.get('finished_at')}).",
           "- **Files**: `data/` (JSONL, CoNLL-2003 with a metadata side file, BRAT, spaCy DocBin, Hugging Face `datasets`, as exported).",
           "", "## How it was made",
           "| step | type | records out |", "|---|---|---|"]
    out += [f"| {s.get('name')} | {s.get('type')} | {s.get('records_out', '')} |" for s in rep.get("steps", []) if isinstance(s, dict)]
    out += ["", "Models (sha256 of the weights used):", ""]
    out += [f"- `{k}`: `{v}`" for k, v in (rep.get("models") or {}).items()] or ["- (none recorded)"]
    for s in gen:
        g = {f["name"]: f["value"] for f in s.get("figures", []) if isinstance(f, dict)}
        out += ["", f"Generation step `{s.get('name')}`: " + ", ".join(f"{k} = {g[k]}" for k in ("seeds", "records_asked", "records_generated", "yield",
                                                                                               "strategies", "label_fidelity", "span_integrity") if k in g)]
    out += ["", "## Labels and spans", "", "| document label | records |", "|---|---|"]
    out += [f"| {k} | {v} |" for k, v in labels.most_common()] or ["| (none) | 0 |"]
    out += ["", "| entity type | spans |", "|---|---|"] + ([f"| {k} | {v} |" for k, v in spans.most_common()] or ["| (none) | 0 |"])
    if rels:
        out += ["", "| relation | count |", "|---|---|"] + [f"| {k} | {v} |" for k, v in rels.most_common()]
    check = figs.get("export_span_check")
    if check:
        out += ["", f"Every export was read back by its consumer tool; spans recovered per format: {check}."]
    qual = {k: v for k, v in figs.items() if k.split(".")[0] in ("mauve", "utility", "diversity", "fidelity", "downstream") or k.startswith("score.")}
    score_steps = [s for s in rep.get("steps", []) if isinstance(s, dict) and s.get("type") == "score"]
    out += ["", "## Quality"]
    if score_steps:
        for s in score_steps:
            out += [f"- {f['name']} = {f['value']} ({f['how']})" for f in s.get("figures", []) if isinstance(f, dict)]
    elif qual:
        out += [f"- {k} = {v}" for k, v in qual.items()]
    else:
        out += ["- No quality figures were measured in this run."]
    out += ["", "## Privacy audits", f"Release verdict: **{verdict}**" + (f" — released anyway with `--force`: {forced}" if forced else ""), ""]
    if audit.get("audits"):
        out += ["| audit | verdict | why | records flagged |", "|---|---|---|---|"]
        out += [f"| {k} | {a.get('verdict')} | {str(a.get('reason') or '').replace('|', '/')} | {a.get('flagged')} |" for k, a in audit["audits"].items()]
    else:
        out += ["No audit step ran: nothing about memorisation or PHI replay was checked."]
    eps = {k: v for k, v in figs.items() if "epsilon" in k.lower()}
    out += ["", "## Differential privacy"]
    out += [f"- {k} = {v}" for k, v in eps.items()] or ["- No DP training in this run: no ε was spent, and no formal privacy guarantee applies to these records."]
    out += ["", "## Known limitations",
            "- The texts are machine-written; labels and spans come from the schema's lexicon rules on the generated text and inherit their errors.",
            "- The audits check replay of the private set's PHI, verbatim and near-duplicate copies, closeness in embedding space and rare "
            "content; they do not check re-identification by linking with outside data. Audits marked skipped or not_powered above did not support "
            "a claim.",
            "- Figures were measured on this run only; see the report for how each was obtained.",
            "", "## Intended use",
            "Development and testing of clinical NLP models and pipelines (NER, relation extraction, document classification) where real "
            "notes cannot be shared. Not for clinical decision making, not as a source of medical facts, and not for estimating prevalence.",
            ""]
    return "\n".join(out)


def _require_verified(folder: Path, home: Path, action: str) -> None:
    from .verify import verify_run

    v = verify_run(folder, home=home)
    if not v.ok:
        raise MedsynthError(f"{folder} does not verify, so it cannot be {action}: {'; '.join(v.problems[:3])}. Check it with `medsynth verify {folder}`.")


def make_release(run_dir: str | Path, out: str | Path, home: Path, force: str | None = None) -> dict[str, Any]:
    """Write the release bundle of ``run_dir`` to ``out`` and sign it. Refuses (MedsynthError) an unverified or
    unfinished run, a run without an export step, a gate that did not pass (unless ``force`` gives the reason), a
    missing signer identity, or an ``out`` that exists and is not empty or lies inside the run."""
    from ..audit.report import render_html
    from ..audit.sign import sign_manifest
    from ..data.io import read_records

    run_dir, out = Path(run_dir), Path(out)
    signer = signer_identity(home)
    _require_verified(run_dir, home, "released")
    rep = json.loads((run_dir / "report.json").read_text(encoding="utf-8"))
    if rep.get("status") != "completed":
        raise MedsynthError(f"{run_dir} did not complete (status {rep.get('status')!r}); resume it with `medsynth run RECIPE --resume {run_dir}`.")
    export = _export_dir(run_dir, rep)
    audit = _audit_summary(rep)
    verdict = audit.get("verdict", "?") if audit else "no_audit"
    if verdict != "pass" and not (force and force.strip()):
        why = "; ".join(audit.get("exceptions") or audit.get("release_reasons") or []) if audit else "the run has no audit step"
        raise MedsynthError(f"The privacy gate of {run_dir} is {verdict!r}, not 'pass' ({why}). Release refused. If your privacy officer accepts "
                            "this, release with `--force 'the reason'` (recorded in the signed manifest and the dataset card).")
    out_r = out.resolve()
    if out_r.is_relative_to(run_dir.resolve()):
        raise MedsynthError(f"--out {out} is inside the run directory; give a folder outside it (the bundle is what leaves the building).")
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise MedsynthError(f"--out {out} exists and is not an empty folder; give a new folder (nothing is overwritten).")
    tmp = out.with_name(out.name + ".partial")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    shutil.copytree(export, tmp / "data", symlinks=False)
    pub = public_report(rep)
    (tmp / "report.json").write_text(json.dumps(pub, indent=2, default=str), encoding="utf-8")
    (tmp / "report.html").write_text(render_html(pub), encoding="utf-8")
    jsonl = tmp / "data" / "records.jsonl"
    records = read_records(jsonl) if jsonl.exists() else []
    forced = force.strip() if (force and verdict != "pass") else None
    (tmp / "dataset_card.md").write_text(dataset_card(pub, records, signer, verdict, forced), encoding="utf-8")
    files = {p.relative_to(tmp).as_posix(): {"sha256": sha256_file(p), "size": p.stat().st_size} for p in sorted(tmp.rglob("*")) if p.is_file()}
    manifest = {"format": "medsynth-release/1", "kind": "release", "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
                "signer": signer, "source_run": {"run_id": rep.get("run_id"), "recipe": rep.get("recipe"),
                                                 "manifest_sha256": hashlib.sha256((run_dir / "manifest.json").read_bytes()).hexdigest()},
                "release_verdict": verdict, "forced": forced, "records": len(records), "files": files}
    (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2), encoding="utf-8")
    sign_manifest(tmp / "manifest.json", home)
    if out.exists():
        out.rmdir()
    tmp.rename(out)
    return manifest


def sign_off(bundle: str | Path, home: Path, decision: str, note: str = "") -> dict[str, Any]:
    """The privacy officer's decision on a verified bundle: ``sign_off.json`` (approver identity, decision, date,
    the sha256 of the bundle's manifest) and its Ed25519 signature ``sign_off.sig`` with the officer's key."""
    from ..audit.sign import sign_manifest

    bundle = Path(bundle)
    if decision not in ("approved", "rejected"):
        raise MedsynthError(f"--decision must be 'approved' or 'rejected', not {decision!r}.")
    approver = signer_identity(home)
    if (bundle / "sign_off.json").exists():
        raise MedsynthError(f"{bundle} already has a sign-off; a decision is never overwritten (make a new release to decide again).")
    _require_verified(bundle, home, "signed off")
    m = json.loads((bundle / "manifest.json").read_text(encoding="utf-8"))
    if m.get("kind") != "release":
        raise MedsynthError(f"{bundle} is a run directory, not a release bundle; make one with `medsynth release {bundle} --out DIR`.")
    block = {"format": "medsynth-sign-off/1", "approver": approver, "decision": decision, "note": note.strip(),
             "date": datetime.now(UTC).isoformat(timespec="seconds"),
             "manifest_sha256": hashlib.sha256((bundle / "manifest.json").read_bytes()).hexdigest()}
    (bundle / "sign_off.json").write_text(json.dumps(block, indent=2), encoding="utf-8")
    sign_manifest(bundle / "sign_off.json", home, bundle / "sign_off.sig")
    return block
