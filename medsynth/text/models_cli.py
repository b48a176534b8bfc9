"""``medsynth models prepare|list``."""

from __future__ import annotations

import time
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

app = typer.Typer(help="Embedded local models: prepare (convert once, offline, sha256-checked) and list.", no_args_is_help=True)
_out = Console()


@app.command("prepare")
def prepare(name: Annotated[str | None, typer.Argument(help="model name (default: the default model)")] = None,
            force: Annotated[bool, typer.Option("--force", help="rebuild the cached folder")] = False,
            all_: Annotated[bool, typer.Option("--all", help="prepare every installed model")] = False) -> None:
    """Assemble/convert/cache a model under $MEDSYNTH_HOME/models (offline)."""
    from .models import DEFAULT_MODEL, list_models, prepare_model

    names = [m["name"] for m in list_models() if m["installed"]] if all_ else [name or DEFAULT_MODEL]
    for n in names:
        t0 = time.time()
        path = prepare_model(n, force=force)
        _out.print(f"[green]ready[/] {n}: {path} ({time.time() - t0:.1f}s)")


@app.command("list")
def list_() -> None:
    """List registered models with installed/prepared status."""
    from .models import list_models

    t = Table()
    for c in ("model", "installed", "prepared", "detail"):
        t.add_column(c)
    for m in list_models():
        t.add_row(m["name"], "yes" if m["installed"] else "no", "yes" if m["prepared"] else "no", m["detail"])
    _out.print(t)
