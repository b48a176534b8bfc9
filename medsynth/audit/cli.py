"""``medsynth audit``: run the privacy audits on files or on a finished run directory."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

__all__ = ["audit_cmd"]


def audit_cmd(run_dir: Annotated[Path | None, typer.Argument(help="a finished run directory (uses its generate output and its private/holdout datasets)")] = None,
              synthetic: Annotated[Path | None, typer.Option("--synthetic", help="synthetic records (.jsonl)")] = None,
              private: Annotated[Path | None, typer.Option("--private", help="private records (.jsonl)")] = None,
              holdout: Annotated[Path | None, typer.Option("--holdout", help="holdout records (.jsonl), real and unseen by the generator")] = None,
              policy: Annotated[Path | None, typer.Option("--policy", help="policy file (default privacy/policy.yaml)")] = None,
              audits: Annotated[list[str] | None, typer.Option("--audit", help="audit name (repeatable; default: all in the policy)")] = None,
              out: Annotated[Path | None, typer.Option("--out", help="write the results as JSON here")] = None) -> None:
    """Audit synthetic records against private and holdout records; exit 1 if the release fails the policy."""
    from rich.console import Console

    from ..data.io import read_records
    from ..exceptions import RecipeError
    from . import run_audits
    from .policy import load_policy

    con = Console()
    if run_dir is not None:
        rep = json.loads((run_dir / "report.json").read_text(encoding="utf-8"))
        ds = rep.get("datasets", {})
        gen = next((s for s in rep["steps"] if s.get("type") == "generate"), None)
        if gen is None or "private" not in ds:
            raise RecipeError(f"{run_dir}: no generate step or no 'private' dataset in this run; use --synthetic/--private/--holdout.")
        synthetic = run_dir / ds[gen["output"]]["path"]
        private = run_dir / ds["private"]["path"]
        holdout = run_dir / ds["holdout"]["path"] if "holdout" in ds else None
    if synthetic is None or private is None:
        raise RecipeError("give a RUN_DIR, or --synthetic and --private (and ideally --holdout).")
    syn, priv = read_records(synthetic), read_records(private)
    hold = read_records(holdout) if holdout else None
    results = run_audits(syn, priv, hold, names=audits, policy=load_policy(policy))
    verdict = "fail" if any(r.verdict == "fail" for r in results) else "pass"
    for r in results:
        con.print(f"[bold]{r.audit}[/]: {r.verdict}, {len(r.findings)} records flagged")
        for f in r.figures:
            con.print(f"   {f['name']} = {f['value']}  [dim]({f['how']})[/]", highlight=False)
        for reason in r.release_reasons:
            con.print(f"   [red]release:[/] {reason}", highlight=False)
    if out:
        out.write_text(json.dumps({"verdict": verdict, "audits": [{"audit": r.audit, "verdict": r.verdict, "figures": r.figures,
                                                                     "findings": [f.__dict__ for f in r.findings], "release_reasons": r.release_reasons} for r in results]},
                                  indent=2, default=str), encoding="utf-8")
    con.print(f"release verdict: [bold]{verdict}[/]")
    if verdict == "fail":
        raise typer.Exit(1)
