"""``medsynth audit``: run the privacy audits on files or on a finished run directory."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

__all__ = ["audit_cmd"]


def _run_datasets(run_dir: Path) -> tuple[Path, Path, Path | None]:
    """The generate output, private and holdout datasets of a finished run, from its report.json; every path is
    confined to the run directory (a report that points elsewhere is refused)."""
    from ..exceptions import DataFormatError, RecipeError
    from ..paths import confined

    p = run_dir / "report.json"
    if not p.is_file():
        raise RecipeError(f"{p} not found: give a finished medsynth run directory, or --synthetic/--private/--holdout.")
    try:
        rep = json.loads(p.read_text(encoding="utf-8"))
        ds = rep.get("datasets", {})
        gen = next((s for s in rep["steps"] if isinstance(s, dict) and s.get("type") == "generate"), None)
        if not isinstance(ds, dict):
            raise TypeError
    except (ValueError, UnicodeDecodeError, AttributeError, KeyError, TypeError):
        raise DataFormatError(f"{p} is not a medsynth report; check the run with `medsynth verify {run_dir}`.") from None
    if gen is None or "private" not in ds or gen.get("output") not in ds:
        raise RecipeError(f"{run_dir}: no generate step or no 'private' dataset in this run; use --synthetic/--private/--holdout.")

    def path_of(name: str) -> Path:
        try:
            return confined(run_dir, str(ds[name]["path"]))
        except (ValueError, KeyError, TypeError):
            raise DataFormatError(f"{p}: the path of dataset '{name}' is missing or points outside the run directory; "
                                  f"check the run with `medsynth verify {run_dir}`.") from None

    return path_of(gen["output"]), path_of("private"), path_of("holdout") if "holdout" in ds else None


def audit_cmd(run_dir: Annotated[Path | None, typer.Argument(help="a finished run directory (uses its generate output and its private/holdout datasets)")] = None,
              synthetic: Annotated[Path | None, typer.Option("--synthetic", help="synthetic records (.jsonl)")] = None,
              private: Annotated[Path | None, typer.Option("--private", help="private records (.jsonl)")] = None,
              holdout: Annotated[Path | None, typer.Option("--holdout", help="holdout records (.jsonl), real and unseen by the generator")] = None,
              policy: Annotated[Path | None, typer.Option("--policy", help="policy file (default privacy/policy.yaml)")] = None,
              audits: Annotated[list[str] | None, typer.Option("--audit", help="audit name (repeatable; default: all in the policy)")] = None,
              out: Annotated[Path | None, typer.Option("--out", help="write the results as JSON here")] = None) -> None:
    """Audit synthetic records against private and holdout records; exit 1 if the release fails the policy."""
    from rich.console import Console

    from ..audit import run_audits
    from ..audit.policy import load_policy
    from ..data.io import read_records
    from ..exceptions import RecipeError

    con = Console()
    if run_dir is not None:
        synthetic, private, holdout = _run_datasets(run_dir)
    if synthetic is None or private is None:
        raise RecipeError("give a RUN_DIR, or --synthetic and --private (and ideally --holdout).")
    syn, priv = read_records(synthetic), read_records(private)
    hold = read_records(holdout) if holdout else None
    pol = load_policy(policy)
    results = run_audits(syn, priv, hold, names=audits, policy=pol)
    from ..audit.base import release_verdict

    summary = {r.audit: {"verdict": r.verdict, "reason": r.reason} for r in results}
    verdict, exceptions = release_verdict(summary, [n for n in pol.required() if not audits or n in audits])
    for r in results:
        con.print(f"[bold]{r.audit}[/]: {r.verdict}, {len(r.findings)} records flagged", highlight=False)
        if r.verdict != "pass":
            con.print(f"   why: {r.reason}", highlight=False)
        for cav in r.caveats:
            con.print(f"   [yellow]caveat:[/] {cav}", highlight=False)
        for f in r.figures:
            con.print(f"   {f['name']} = {f['value']}  [dim]({f['how']})[/]", highlight=False)
        for reason in r.release_reasons:
            con.print(f"   [red]release:[/] {reason}", highlight=False)
    if out:
        out.write_text(json.dumps({"verdict": verdict, "exceptions": exceptions,
                                   "audits": [{"audit": r.audit, "verdict": r.verdict, "reason": r.reason, "caveats": r.caveats, "figures": r.figures,
                                               "findings": [f.__dict__ for f in r.findings], "release_reasons": r.release_reasons} for r in results]},
                                  indent=2, default=str), encoding="utf-8")
    con.print(f"release verdict: [bold]{verdict}[/]", highlight=False)
    for e in exceptions:
        con.print(f"   {e}", highlight=False)
    if verdict == "fail":
        raise typer.Exit(1)
