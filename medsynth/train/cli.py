"""``medsynth train``: train a classifier / NER tagger on a JSONL record file (optionally DP-SGD), outside a recipe."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer


def train_cmd(
    data: Annotated[Path, typer.Option("--in", help="training records (JSONL, medsynth Record format)")],
    out: Annotated[Path, typer.Option("--out", help="folder for the trained model (model.pt + model.json)")],
    task: Annotated[str, typer.Option("--task", help="text | ner | row | image")] = "text",
    eval_: Annotated[Path | None, typer.Option("--eval", help="real held-out records (JSONL) to evaluate on")] = None,
    epochs: Annotated[int, typer.Option("--epochs")] = 20,
    batch_size: Annotated[int, typer.Option("--batch-size")] = 64,
    lr: Annotated[float, typer.Option("--lr")] = 1e-3,
    label_column: Annotated[str | None, typer.Option("--label-column", help="row task: the class column")] = None,
    epsilon: Annotated[float | None, typer.Option("--epsilon", help="train with DP-SGD to this ε")] = None,
    delta: Annotated[float, typer.Option("--delta")] = 1e-5,
    max_grad_norm: Annotated[float, typer.Option("--max-grad-norm")] = 1.0,
    accountant: Annotated[str, typer.Option("--accountant", help="rdp | prv")] = "rdp",
    budget: Annotated[str | None, typer.Option("--budget", help="privacy budget to debit (required with --epsilon)")] = None,
    label_smoothing: Annotated[float, typer.Option("--label-smoothing")] = 0.0,
    seed: Annotated[int, typer.Option("--seed")] = 0,
) -> None:
    """Train a model on records; DP-SGD debits the budget before training. Prints metrics as JSON."""
    from ..data.io import read_records
    from ..exceptions import RecipeError
    from ..recipe.ledger import BudgetLedger
    from .classifiers import TrainSpec, evaluate_model, train_model
    from .dp import DPConfig
    from .robust import RobustConfig

    spec = TrainSpec(task=task, epochs=epochs, batch_size=batch_size, lr=lr, label_column=label_column)  # type: ignore[arg-type]
    dp = None
    ledger = None
    if epsilon is not None:
        if not budget:
            raise RecipeError("--epsilon needs --budget NAME (create one with `medsynth budget create NAME --epsilon E --delta D`).")
        dp = DPConfig(epsilon=epsilon, delta=delta, max_grad_norm=max_grad_norm, accountant=accountant)  # type: ignore[arg-type]
        ledger = BudgetLedger()
    recs = read_records(data)
    model, _ = train_model(recs, spec, dp=dp, robust=RobustConfig(label_smoothing=label_smoothing), seed=seed,
                           ledger=ledger, budget=budget, run_id="cli", step="medsynth train")
    model.save(out)
    res: dict = {"model": str(out), "train_records": len(recs)}
    if model.report and model.report.dp:
        res["dp"] = {"epsilon_rdp": model.report.dp.epsilon_rdp, "epsilon_prv": model.report.dp.epsilon_prv,
                     "delta": delta, "how": model.report.dp.how()}
    if eval_ is not None:
        res["eval"] = evaluate_model(model, read_records(eval_))
    typer.echo(json.dumps(res, indent=2))
