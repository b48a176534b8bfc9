"""The ``medsynth`` command line (typer)."""

from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from .. import __version__
from ..exceptions import MedsynthError, RecipeError

app = typer.Typer(name="medsynth", help="On-prem synthetic clinical data with privacy audits.", no_args_is_help=True,
                  pretty_exceptions_enable=False, add_completion=False)
console = Console(stderr=True)
out = Console()


def _fail(e: BaseException, code: int = 2) -> None:
    console.print(f"[bold red]error[/] ({type(e).__name__}):", highlight=False)
    console.print(str(e), highlight=False, markup=False)
    raise typer.Exit(code)


@app.callback()
def _main(verbose: Annotated[bool, typer.Option("--verbose", "-v", help="log step activity (counts and ids only)")] = False) -> None:
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    from ..envcheck import set_offline_defaults
    from ..registry import load_plugins

    set_offline_defaults()
    # third-party progress bars and load reports ("Loading weights", "Saving the dataset") are noise in a run's
    # output and in log files; medsynth prints its own progress. Set the variables yourself to see them again.
    os.environ.setdefault("TQDM_DISABLE", "1")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")
    load_plugins()


@app.command()
def version() -> None:
    """Print the medsynth version."""
    out.print(__version__)


@app.command()
def validate(recipe: Annotated[Path, typer.Argument(help="recipe YAML")],
             set_: Annotated[list[str] | None, typer.Option("--set", help="override key.path=value (repeatable)")] = None) -> None:
    """Validate a recipe and list every problem at once (field + fix). Loads no model."""
    from ..recipe.schema import load_recipe

    try:
        loaded = load_recipe(recipe, set_)
    except RecipeError as e:
        _fail(e)
    out.print(f"[green]ok[/] {recipe}: {len(loaded.steps)} steps ({', '.join(loaded.names)})")


@app.command()
def run(recipe: Annotated[Path, typer.Argument(help="recipe YAML")],
        set_: Annotated[list[str] | None, typer.Option("--set", help="override key.path=value (repeatable)")] = None,
        run_dir: Annotated[Path | None, typer.Option("--run-dir", help="run directory (default runs/<run-id>)")] = None,
        resume: Annotated[str | None, typer.Option("--resume", help="resume the run with this id (or path)")] = None,
        dry_run: Annotated[bool, typer.Option("--dry-run", help="print the plan and exit")] = False,
        no_calibrate: Annotated[bool, typer.Option("--no-calibrate", help="dry-run: do not calibrate unmeasured generation steps (a guess is shown instead)")] = False,
        no_cache: Annotated[bool, typer.Option("--no-cache", help="do not reuse cached step outputs")] = False,
        runs_root: Annotated[Path, typer.Option("--runs-root", help="where new run directories go")] = Path("runs")) -> None:
    """Run a recipe: validate everything first, then run the steps with caching and resume."""
    from ..recipe.schema import load_recipe

    try:
        loaded = load_recipe(recipe, set_)
    except RecipeError as e:
        _fail(e)
    if dry_run:
        _print_plan(loaded, calibrate=not no_calibrate)
        return
    from ..recipe.engine import run_recipe

    try:
        res = run_recipe(loaded, run_dir=run_dir, resume=resume, runs_root=runs_root, use_cache=not no_cache, console=console)
    except MedsynthError as e:
        where = getattr(e, "resume_run", None)
        if where:  # the run started: everything done so far is kept
            console.print(f"[yellow]run stopped[/]; {where} keeps everything done so far. Resume with "
                          f"`medsynth run {recipe} --resume {where}`.", highlight=False)
        _fail(e, 1)
    except KeyboardInterrupt:
        console.print("[yellow]interrupted[/]; resume with --resume")
        raise typer.Exit(130) from None
    out.print(f"[bold green]{res.status}[/] in {res.seconds:.1f}s — run dir: {res.run_dir}")
    if res.report_html:
        out.print(f"report: {res.report_html}")
    out.print(f"report (JSON): {res.report_json}")


def _print_plan(loaded: Any, calibrate: bool = True) -> None:
    from ..recipe.engine import plan_recipe

    rows = plan_recipe(loaded, calibrate=calibrate)
    t = Table(title=f"plan for recipe '{loaded.config.name}' (seed {loaded.config.seed})")
    for col in ["step", "type", "inputs → output", "records in", "records out", "est. tokens", "est. time", "privacy (ε, δ)"]:
        t.add_column(col)
    tot_tok, tot_s, tot_eps = 0, 0.0, 0.0
    for r in rows:
        eps = f"{r['epsilon']}, {r['delta']} from '{r['budget']}'" if r["epsilon"] else "—"
        t.add_row(r["step"], r["type"], f"{', '.join(r['inputs']) or '∅'} → {r['output']}", _fmt(r["records_in"]), _fmt(r["records_out"]),
                  _fmt(r["est_tokens"]), f"{r['est_seconds']:.0f}s" if r["est_seconds"] else "?", eps)
        tot_tok += r["est_tokens"] or 0
        tot_s += r["est_seconds"] or 0
        tot_eps += r["epsilon"] or 0
    out.print(t)
    out.print(f"total: ~{tot_tok:,} generated tokens, ~{tot_s / 60:.1f} min estimated, ε to spend: {tot_eps:g}")
    out.print("how each time was estimated:", highlight=False)
    for r in rows:
        if r["est_seconds"]:
            out.print(f"  {r['step']}: {r['how_estimated']}", markup=False, highlight=False, soft_wrap=True)
    for r in rows:
        for n in r["notes"]:
            out.print(f"  note ({r['step']}): {n}", markup=False, highlight=False, soft_wrap=True)


def _fmt(v: Any) -> str:
    return "?" if v is None else f"{v:,}"


@app.command("list")
def list_(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """List registered steps, strategies, backends, audits, imputers and models."""
    from ..registry import all_registries, load_plugins

    load_plugins()
    data = {k: r.names() for k, r in all_registries().items()}
    if as_json:
        out.print_json(json.dumps(data))
        return
    for k, names in data.items():
        out.print(f"[bold]{k}[/]: {', '.join(names) or '(none)'}")


@app.command()
def env(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Offline readiness: models, data packages, versions, and whether anything needs the network (it must not)."""
    from .env import environment_report

    rep = environment_report()
    if as_json:
        out.print_json(json.dumps(rep, default=str))
        return
    t = Table(title=f"medsynth {__version__} — offline readiness")
    t.add_column("item")
    t.add_column("status")
    t.add_column("detail")
    for row in rep["items"]:
        style = {"ok": "green", "missing": "red", "optional": "yellow", "not prepared": "yellow"}.get(row["status"], "")
        t.add_row(row["name"], f"[{style}]{row['status']}[/]" if style else row["status"], row.get("detail", ""))
    out.print(t)
    out.print(f"network needed: [bold]{'YES' if rep['network_needed'] else 'no'}[/] — {rep['network_detail']}")
    out.print(f"MEDSYNTH_HOME: {rep['home']}")


@app.command()
def verify(run_dir: Annotated[Path, typer.Argument(help="run directory")],
           trust: Annotated[list[Path] | None, typer.Option("--trust", help="also trust this signer's public key (PEM file; repeatable)")] = None) -> None:
    """Re-hash every artifact of a run against its manifest and check the signature with a key you trust (this
    machine's, those in $MEDSYNTH_HOME/keys/trusted, or --trust); non-zero exit on any change or untrusted signer."""
    from ..recipe.verify import verify_run

    res = verify_run(run_dir, trust=list(trust or []))
    if res.ok:
        out.print(f"[green]verified[/] {res.kind} {run_dir}: {res.checked} files match manifest.json; signature {res.signature} ({res.key_source})", soft_wrap=True)
        if res.kind == "release":
            out.print(f"sign-off: {res.sign_off or 'none yet (medsynth sign-off BUNDLE --decision approved|rejected)'}", markup=False, highlight=False, soft_wrap=True)
        return
    console.print(f"[bold red]verification failed[/] for {run_dir}:")
    for p in res.problems:
        console.print(f"  - {p}", markup=False)
    raise typer.Exit(1)


@app.command()
def report(run_dir: Annotated[Path, typer.Argument(help="run directory")]) -> None:
    """Print a run's report summary (figures with how they were obtained)."""
    p = run_dir / "report.json"
    if not p.is_file():
        _fail(MedsynthError(f"{p} not found: is {run_dir} a medsynth run directory?"), 1)
    try:
        rep = json.loads(p.read_text(encoding="utf-8"))
        if not isinstance(rep, dict):
            raise ValueError
    except (ValueError, UnicodeDecodeError):
        _fail(MedsynthError(f"{p} is not a medsynth report (not a JSON object). Re-create it with `medsynth run RECIPE --resume {run_dir}`."), 1)
    missing = [k for k in ("recipe", "run_id", "status", "steps") if k not in rep]
    if missing or not isinstance(rep.get("steps"), list):
        _fail(MedsynthError(f"{p} is not a complete medsynth report (missing {', '.join(missing) or 'a list of steps'}). "
                            f"Check it with `medsynth verify {run_dir}`; re-create it with `medsynth run RECIPE --resume {run_dir}`."), 1)
    out.print(f"[bold]{rep['recipe']}[/] run {rep['run_id']}: {rep['status']} in {rep.get('seconds', '?')}s", markup=True, highlight=False)
    audit = next((s["sections"]["audit_summary"] for s in rep["steps"] if isinstance(s, dict) and isinstance(s.get("sections"), dict)
                  and isinstance(s["sections"].get("audit_summary"), dict)), None)
    if audit:
        out.print(f"release verdict: {audit.get('verdict', '?')}", markup=False, highlight=False)
        for e in audit.get("exceptions") or audit.get("release_reasons") or []:
            out.print(f"   exception: {e}", markup=False, highlight=False)
        for name, a in (audit.get("audits") or {}).items():
            if isinstance(a, dict):
                out.print(f"   {name}: {a.get('verdict', '?')}" + (f" ({a.get('reason')})" if a.get("verdict") != "pass" and a.get("reason") else ""),
                          markup=False, highlight=False)
                for c in a.get("caveats") or []:
                    out.print(f"      caveat: {c}", markup=False, highlight=False)
    else:
        out.print("release verdict: none (this run has no audit step)", markup=False, highlight=False)
    for s in rep["steps"]:
        mv = s.get("sections", {}).get("model_verdicts") if isinstance(s, dict) and isinstance(s.get("sections"), dict) else None
        for kind, v in (mv.items() if isinstance(mv, dict) else []):
            if isinstance(v, dict):
                out.print(f"model {s.get('name')}/{kind}: {v.get('verdict', '?')} ({v.get('reason', '')})", markup=False, highlight=False)
    for s in rep["steps"]:
        if not isinstance(s, dict):
            continue
        out.print(f"  {s.get('name', '?')} ({s.get('type', '?')}): {s.get('records_out', '?')} records, {s.get('how', s.get('status', ''))}",
                  markup=False, highlight=False)
        for f in s.get("figures", []) if isinstance(s.get("figures"), list) else []:
            if isinstance(f, dict):
                out.print(f"     {f.get('name')} = {f.get('value')}  ({f.get('how')})", markup=False, highlight=False)
    q = rep.get("quarantine") if isinstance(rep.get("quarantine"), dict) else {}
    out.print(f"quarantined: {q.get('total', 0)} {q.get('by_reason', {})}", markup=False, highlight=False)


keys_app = typer.Typer(help="Signing keys: this machine's key, and the signers whose runs you trust.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")


@keys_app.command("show")
def keys_show(pem: Annotated[bool, typer.Option("--pem", help="print the public key (PEM) to give to those who verify your runs")] = False) -> None:
    """This machine's signing key: its fingerprint (and public key with --pem); created on first use."""
    from ..audit.sign import key_fingerprint, public_key_pem
    from ..paths import home

    key = public_key_pem(home())
    if pem:
        out.print(key.strip(), markup=False, highlight=False)
        return
    out.print(f"{key_fingerprint(key)}  ({home() / 'keys' / 'medsynth_ed25519.pub.pem'})", markup=False, highlight=False)


@keys_app.command("trust")
def keys_trust(key_file: Annotated[Path, typer.Argument(help="a signer's public key (PEM), e.g. from `medsynth keys show --pem`")],
               name: Annotated[str | None, typer.Option("--name", help="a name for the signer (default: the file's name)")] = None) -> None:
    """Trust a signer's public key for `medsynth verify` (copied to $MEDSYNTH_HOME/keys/trusted/)."""
    from ..audit.sign import key_fingerprint
    from ..paths import check_name, home

    try:
        text = key_file.read_text(encoding="utf-8")
        fp = key_fingerprint(text)
    except (OSError, ValueError, UnicodeDecodeError, TypeError):
        _fail(MedsynthError(f"{key_file}: not a readable PEM public key. Ask the signer for the output of `medsynth keys show --pem`."), 2)
    label = name or key_file.stem
    try:
        check_name(label, "--name")
    except ValueError as e:
        _fail(MedsynthError(str(e)), 2)
    d = home() / "keys" / "trusted"
    d.mkdir(parents=True, exist_ok=True)
    (d / f"{label}.pem").write_text(text, encoding="utf-8")
    out.print(f"trusted {fp} as '{label}'", markup=False, highlight=False)


@keys_app.command("identity")
def keys_identity(name: Annotated[str | None, typer.Option("--name", help="your name, as it should appear on what you sign")] = None,
                  role: Annotated[str | None, typer.Option("--role", help="your role, e.g. 'data engineer' or 'privacy officer'")] = None,
                  organisation: Annotated[str, typer.Option("--organisation", help="your organisation (optional)")] = "") -> None:
    """Who signs with this machine's key (shown in releases and sign-offs); without options, print it."""
    from ..paths import home
    from ..recipe.release import set_signer_identity, signer_identity

    try:
        if name is None and role is None:
            ident = signer_identity(home())
        else:
            set_signer_identity(home(), name or "", role or "", organisation)
            ident = signer_identity(home())
    except MedsynthError as e:
        _fail(e, 2)
    org = f", {ident['organisation']}" if ident["organisation"] else ""
    out.print(f"{ident['name']} ({ident['role']}{org}), key {ident['key_fingerprint']}", markup=False, highlight=False, soft_wrap=True)


@app.command()
def release(run_dir: Annotated[Path, typer.Argument(help="a verified, completed run directory with an export step")],
            out_dir: Annotated[Path, typer.Option("--out", help="a new folder for the bundle (outside the run directory)")],
            force: Annotated[str | None, typer.Option("--force", help="release although the privacy gate did not pass; give the reason (recorded in the signed manifest)")] = None) -> None:
    """Write the release bundle: only what may leave the building (exports, public report, dataset card), signed."""
    from ..paths import home
    from ..recipe.release import make_release

    try:
        m = make_release(run_dir, out_dir, home(), force=force)
    except MedsynthError as e:
        _fail(e, 1)
    out.print(f"released {m['records']} records to {out_dir} ({len(m['files'])} files); verdict {m['release_verdict']}"
              + (f", forced: {m['forced']}" if m["forced"] else "") + f"; signed by {m['signer']['name']} ({m['signer']['key_fingerprint']})",
              markup=False, highlight=False, soft_wrap=True)
    out.print(f"check it with: medsynth verify {out_dir}; the privacy officer decides with: medsynth sign-off {out_dir} --decision approved|rejected",
              markup=False, highlight=False, soft_wrap=True)


@app.command("sign-off")
def sign_off_cmd(bundle: Annotated[Path, typer.Argument(help="a release bundle (from `medsynth release`)")],
                 decision: Annotated[str, typer.Option("--decision", help="approved or rejected")],
                 note: Annotated[str, typer.Option("--note", help="the officer's note (conditions, reasons)")] = "") -> None:
    """The privacy officer's signed decision on a release bundle, bound to its manifest (sign_off.json + .sig)."""
    from ..paths import home
    from ..recipe.release import sign_off

    try:
        b = sign_off(bundle, home(), decision, note)
    except MedsynthError as e:
        _fail(e, 1)
    out.print(f"{b['decision']} by {b['approver']['name']} ({b['approver']['role']}) on {b['date']}", markup=False, highlight=False, soft_wrap=True)


# ---------------------------------------------------------------------------------------------------------------
# Commands of their own modules (medsynth/cli/*.py): imported directly, so a broken dependency is an error, not a
# silently missing subcommand.
from ..text.serve import serve_cmd  # noqa: E402
from .adapt import adapt_cmd  # noqa: E402
from .audit import audit_cmd  # noqa: E402
from .budget import budget_app  # noqa: E402
from .impute import impute_cmd  # noqa: E402
from .models import app as models_app  # noqa: E402
from .scrub import scrub_cmd  # noqa: E402
from .train import train_cmd  # noqa: E402

app.add_typer(models_app, name="models")
app.add_typer(budget_app, name="budget")
for _name, _cmd in (("scrub", scrub_cmd), ("audit", audit_cmd), ("impute", impute_cmd), ("train", train_cmd), ("adapt", adapt_cmd),
                    ("serve", serve_cmd)):
    app.command(_name)(_cmd)


#: printed (with the exception type only) when a command fails in a way medsynth did not foresee; tests look for it
UNEXPECTED = "unexpected internal error"


def main() -> None:
    """Exit codes: 0 success; 1 the work failed (a run stopped, verification failed, an unexpected error); 2 bad input
    or usage (the message names the problem and the fix). Never a traceback: it could carry record text. Set
    MEDSYNTH_DEBUG=1 to see one when reporting a bug."""
    try:
        app()
    except MedsynthError as e:  # errors from subcommands
        console.print(f"[bold red]error[/] ({type(e).__name__}):")
        console.print(str(e), markup=False, highlight=False)
        sys.exit(2)
    except Exception as e:
        if os.environ.get("MEDSYNTH_DEBUG"):
            raise
        console.print(f"[bold red]error[/]: {UNEXPECTED} ({type(e).__name__}). This is a bug: please report it "
                      "with the command line (not your data); MEDSYNTH_DEBUG=1 shows the traceback.", highlight=False)
        sys.exit(1)
