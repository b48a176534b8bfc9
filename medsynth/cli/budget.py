"""``medsynth budget show|create|history``: the privacy-budget ledger of ``$MEDSYNTH_HOME``."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

budget_app = typer.Typer(help="Privacy budgets (ε, δ) shared by every run of this MEDSYNTH_HOME.", no_args_is_help=True)
out = Console()


def _ledger(create: bool = True):  # noqa: ANN202
    """The ledger of this MEDSYNTH_HOME; ``create=False`` (read-only commands) returns None when there is none yet,
    instead of creating the file as a side effect."""
    from ..ledger import BudgetLedger, default_ledger_path

    if not create and not default_ledger_path().exists():
        return None
    return BudgetLedger()


def _bad(msg: str) -> None:
    Console(stderr=True).print(f"[bold red]error[/]: {msg}", highlight=False)
    raise typer.Exit(2)


def _existing_ledger(name: str | None, as_json: bool):  # noqa: ANN202
    """The ledger for a read-only command, or None after saying there is none yet (an unknown NAME is an error)."""
    from ..ledger import default_ledger_path

    led = _ledger(create=False)
    if led is None and name:
        _bad(f"no privacy budget named '{name}' (this MEDSYNTH_HOME has none yet); create it with `medsynth budget create {name} --epsilon E --delta D`.")
    if led is None:
        if as_json:
            out.print_json("[]")
        else:
            out.print(f"no privacy budgets yet ({default_ledger_path()} does not exist); create one with "
                      "`medsynth budget create NAME --epsilon E --delta D`", highlight=False)
    return led


@budget_app.command("create")
def create(name: Annotated[str, typer.Argument(help="budget name, e.g. the data set it protects")],
           epsilon: Annotated[float, typer.Option("--epsilon", help="total ε of the budget")],
           delta: Annotated[float, typer.Option("--delta", help="total δ of the budget (below 1/n)")],
           description: Annotated[str, typer.Option("--description")] = "") -> None:
    """Create a named budget (never changed afterwards)."""
    from ..ledger import _check_eps_delta

    if not name.strip():
        _bad("a privacy budget needs a non-empty name (e.g. the data set it protects).")
    try:
        _check_eps_delta(epsilon, delta, f"budget '{name}'")
    except ValueError as e:
        _bad(f"{e} Give --epsilon > 0 (e.g. 8) and 0 <= --delta < 1 (e.g. 1e-5).")
    b = _ledger().create(name, epsilon, delta, description)
    out.print(f"created budget '{b.name}': ε={b.epsilon:g}, δ={b.delta:g}")


@budget_app.command("show")
def show(name: Annotated[str | None, typer.Argument(help="one budget (default: all)")] = None,
         as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Totals, spent and left of each budget."""
    led = _existing_ledger(name, as_json)
    if led is None:
        return
    bs = [led.get(name)] if name else led.budgets()
    if as_json:
        out.print_json(json.dumps([b.to_dict() for b in bs]))
        return
    t = Table(title=f"privacy budgets ({led.path})")
    for c in ["name", "ε total", "ε spent", "ε left", "δ total", "δ spent", "debits"]:
        t.add_column(c)
    for b in bs:
        t.add_row(b.name, f"{b.epsilon:g}", f"{b.epsilon_spent:.4g}", f"{b.epsilon_left:.4g}", f"{b.delta:g}",
                  f"{b.delta_spent:.3g}", str(b.n_debits))
    out.print(t)
    out.print("composition across debits: basic (ε and δ add up)")


@budget_app.command("history")
def history(name: Annotated[str | None, typer.Argument(help="one budget (default: all)")] = None,
            as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Every debit: when, how much, which run and step, accountant, and what became of it."""
    led = _existing_ledger(name, as_json)
    if led is None:
        return
    rows = led.history(name)
    if as_json:
        out.print_json(json.dumps(rows))
        return
    t = Table(title="privacy budget debits")
    for c in ["id", "budget", "ε", "δ", "run", "step", "accountant", "status", "when"]:
        t.add_column(c)
    for r in rows:
        t.add_row(str(r["id"]), r["budget"], f"{r['epsilon']:.4g}", f"{r['delta']:.3g}", r["run_id"], r["step"],
                  r["accountant"], r["status"], r["created_at"])
    out.print(t)
