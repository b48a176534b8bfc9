"""``medsynth adapt``: train a LoRA / prefix / prompt-tuning adapter of the generator on scrubbed records (JSONL)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

__all__ = ["adapt_cmd"]


def adapt_cmd(in_: Annotated[Path, typer.Option("--in", help="scrubbed training records (.jsonl: {id, text, labels?})")],
              out: Annotated[Path, typer.Option("--out", help="output folder (the adapter goes to OUT/adapter)")],
              model: Annotated[str, typer.Option("--model", help="registry name or local HF folder")] = "gemma3-270m",
              method: Annotated[str, typer.Option("--method", help="lora | prefix | prompt_tuning")] = "lora",
              epochs: Annotated[int, typer.Option("--epochs")] = 3,
              batch_size: Annotated[int, typer.Option("--batch-size")] = 8,
              lr: Annotated[float, typer.Option("--lr", help="learning rate")] = 2e-4,
              max_length: Annotated[int, typer.Option("--max-length")] = 256,
              holdout: Annotated[Path | None, typer.Option("--holdout", "--heldout", help="real records NOT trained on (.jsonl): perplexity base vs adapted")] = None,
              canaries: Annotated[int, typer.Option("--canaries", help="canary records to insert (0 = none)")] = 0,
              canary_repeats: Annotated[str, typer.Option("--canary-repeats", help="repeat counts, comma-separated (cycled)")] = "1",
              canary_digits: Annotated[int, typer.Option("--canary-digits")] = 6,
              dp_epsilon: Annotated[float | None, typer.Option("--epsilon", "--dp-epsilon", help="train with DP-SGD to this ε (needs --budget; `--dp-epsilon` is the old spelling)")] = None,
              dp_delta: Annotated[float | None, typer.Option("--delta", "--dp-delta", help="δ of the DP guarantee (`--dp-delta` is the old spelling)")] = None,
              budget: Annotated[str | None, typer.Option("--budget", help="privacy budget to debit (see `medsynth budget`)")] = None,
              seed: Annotated[int, typer.Option("--seed")] = 0) -> None:
    """Adapt the generator on scrubbed records; prints the adapter's sha256 and perplexities (never record text)."""
    from rich.console import Console

    from ..data.io import read_records
    from ..exceptions import DataFormatError
    from ..ledger import BudgetLedger
    from ..steps.adapt import AdaptConfig, run_adaptation

    err = Console(stderr=True)
    if not in_.exists():
        raise DataFormatError(f"{in_}: not found.")
    cfg: dict = {"type": "adapt", "model": model, "method": {"type": method},
                 "train": {"epochs": epochs, "batch_size": batch_size, "learning_rate": lr, "max_length": max_length}}
    if canaries:
        cfg["canaries"] = {"n": canaries, "repeats": [int(x) for x in canary_repeats.split(",") if x.strip()], "digits": canary_digits}
    if dp_epsilon is not None:
        cfg["dp"] = {"epsilon": dp_epsilon, "budget": budget} | ({"delta": dp_delta} if dp_delta is not None else {})
    c = AdaptConfig.model_validate(cfg)
    recs = read_records(in_)
    held = read_records(holdout) if holdout else None
    ledger = BudgetLedger() if c.dp else None
    if c.dp and not budget:
        raise typer.BadParameter("DP adaptation debits a privacy budget: pass --budget NAME", param_hint="--budget")
    out.mkdir(parents=True, exist_ok=True)
    summary = run_adaptation(recs, c, out, seed=seed, holdout=held, ledger=ledger, budget=budget, run_id="cli", step="adapt")
    cans = summary.pop("_canary_records")
    summary.pop("_model")
    if cans:
        from ..data.io import write_records

        write_records(cans, out / "canaries.jsonl")
    (out / "summary.json").write_text(json.dumps(summary, indent=2, default=str), encoding="utf-8")
    msg = f"{c.method.type} adapter {summary['adapter_sha256'][:16]}… → {summary['adapter_path']} ({summary['steps']} steps, {summary['train_seconds']} s)"
    if "holdout_base" in summary:
        msg += f"; held-out perplexity {summary['holdout_base']['perplexity']:.2f} → {summary['holdout_adapted']['perplexity']:.2f}"
    if summary.get("dp"):
        msg += f"; ε = {summary['dp']['epsilon_planned']:.3f} debited from '{budget}'"
    err.print(msg, markup=False, highlight=False)
