"""``medsynth train``: train a classifier or NER tagger on record files (JSONL), optionally with DP-SGD.

It builds a small recipe (``load`` steps + one ``train`` step) and runs it like any other, so the run directory,
report, signature and privacy-budget debit are the same as in a recipe.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Annotated

import typer

__all__ = ["train_cmd", "build_recipe"]


def build_recipe(train: list[Path], eval_: list[Path], *, task: str = "classification", model: str = "auto", epochs: int | None = None,
                 batch_size: int | None = None, lr: float | None = None, epsilon: float | None = None, delta: float = 1e-5,
                 max_grad_norm: float = 1.0, accountant: str = "rdp", budget: str | None = None, mia_nonmembers: Path | None = None,
                 shadows: int = 4, seed: int = 0) -> dict:
    steps: list[dict] = []
    for i, p in enumerate(train):
        steps.append({"type": "load", "name": f"train_{i}", "path": str(Path(p).resolve())})
    for i, p in enumerate(eval_):
        steps.append({"type": "load", "name": f"eval_{i}", "path": str(Path(p).resolve())})
    if mia_nonmembers:
        steps.append({"type": "load", "name": "nonmembers", "path": str(Path(mia_nonmembers).resolve())})
    st: dict = {"type": "train", "name": "train", "task": task, "input": [f"train_{i}" for i in range(len(train))]}
    if eval_:
        st["eval"] = {"real": [f"eval_{i}" for i in range(len(eval_))]}
    hp = {k: v for k, v in {"epochs": epochs, "batch_size": batch_size, "lr": lr}.items() if v is not None}
    if task == "classification":
        st["classifier"] = {"model": model, **hp}
    else:
        st["tagger"] = hp
    if epsilon is not None:
        st["dp"] = {"epsilon": epsilon, "delta": delta, "max_grad_norm": max_grad_norm, "accountant": accountant, "budget": budget}
    if mia_nonmembers:
        st["mia"] = {"nonmembers": "nonmembers", "shadows": shadows}
    steps.append(st)
    return {"name": "train", "description": "medsynth train", "seed": seed, "steps": steps}


def train_cmd(train: Annotated[list[Path], typer.Option("--train", help="training records (.jsonl; repeat for several modalities)")],
              out: Annotated[Path, typer.Option("--out", help="folder to write the model(s) to")],
              eval_: Annotated[list[Path] | None, typer.Option("--eval", help="real held-out records to evaluate on (.jsonl)")] = None,
              task: Annotated[str, typer.Option("--task", help="classification | ner")] = "classification",
              model: Annotated[str, typer.Option("--model", help="auto | mlp | linear | text_embed | text_finetune | cnn")] = "auto",
              epochs: Annotated[int | None, typer.Option("--epochs")] = None,
              batch_size: Annotated[int | None, typer.Option("--batch-size")] = None,
              lr: Annotated[float | None, typer.Option("--lr")] = None,
              epsilon: Annotated[float | None, typer.Option("--epsilon", help="train with DP-SGD at this ε (debited before training)")] = None,
              delta: Annotated[float, typer.Option("--delta")] = 1e-5,
              max_grad_norm: Annotated[float, typer.Option("--max-grad-norm")] = 1.0,
              accountant: Annotated[str, typer.Option("--accountant", help="rdp | prv")] = "rdp",
              budget: Annotated[str | None, typer.Option("--budget", help="privacy budget to debit (required with --epsilon)")] = None,
              mia_nonmembers: Annotated[Path | None, typer.Option("--mia-nonmembers", help="unseen real records: run a membership-inference audit")] = None,
              shadows: Annotated[int, typer.Option("--shadows", help="LiRA shadow models")] = 4,
              seed: Annotated[int, typer.Option("--seed")] = 0,
              run_dir: Annotated[Path | None, typer.Option("--run-dir", help="run directory (default runs/train-…)")] = None) -> None:
    """Train a model on records; print its held-out figures and ε (RDP and PRV)."""
    from rich.console import Console

    from ..exceptions import RecipeError
    from ..paths import find_step_dir
    from ..recipe.engine import run_recipe
    from ..recipe.schema import load_recipe

    con = Console(stderr=True)
    if epsilon is not None and not budget:
        raise RecipeError("--epsilon needs --budget NAME (a privacy budget from `medsynth budget create`).")
    raw = build_recipe(list(train), list(eval_ or []), task=task, model=model, epochs=epochs, batch_size=batch_size, lr=lr, epsilon=epsilon,
                       delta=delta, max_grad_norm=max_grad_norm, accountant=accountant, budget=budget, mia_nonmembers=mia_nonmembers,
                       shadows=shadows, seed=seed)
    res = run_recipe(load_recipe(raw), run_dir=run_dir, console=con, show_progress=False, use_cache=False)
    rep = json.loads(res.report_json.read_text(encoding="utf-8"))  # type: ignore[union-attr]
    step = next(s for s in rep["steps"] if s.get("type") == "train")
    src = find_step_dir(res.run_dir, step["name"]) / "models"  # type: ignore[operator]
    if out.exists():
        shutil.rmtree(out)
    shutil.copytree(src, out)
    for f in step.get("figures", []):
        con.print(f"{f['name']} = {f['value']}  [dim]({f['how']})[/]", highlight=False)
    con.print(f"model(s) written to {out} (run {res.run_dir})")
