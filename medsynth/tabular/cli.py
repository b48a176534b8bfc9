"""``medsynth impute``: complete a CSV/parquet table, writing the mask of imputed cells next to it."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

__all__ = ["impute_cmd"]


def impute_cmd(in_: Annotated[Path, typer.Option("--in", help="table (.csv or .parquet)")],
               out: Annotated[Path, typer.Option("--out", help="completed table (.csv or .parquet)")],
               method: Annotated[str, typer.Option("--method", help="auto | select | chained | hgb | mice | missforest | knn | mean")] = "auto",
               mask_out: Annotated[Path | None, typer.Option("--mask-out", help="mask of imputed cells (default: <out>.mask.<ext>)")] = None,
               std_out: Annotated[Path | None, typer.Option("--std-out", help="per-cell spread of the imputed values")] = None,
               n_imputations: Annotated[int, typer.Option("--n-imputations", min=1, help="m > 1: multiple imputation; --std-out is the std over the m draws")] = 1,
               exclude: Annotated[list[str] | None, typer.Option("--exclude", help="column passed through untouched and not used (repeatable): ids, free text")] = None,
               empty_columns: Annotated[str, typer.Option("--empty-columns", help="error | keep | zero: columns without any observed value")] = "error",
               seed: Annotated[int, typer.Option("--seed")] = 0) -> None:
    """Impute missing cells; observed cells are never changed. Prints a per-column summary (counts only)."""
    from rich.console import Console

    from .imputers import METHODS, Imputer
    from .io import read_table, write_table

    if method not in METHODS:
        raise typer.BadParameter(f"use one of {', '.join(METHODS)}", param_hint="--method")
    if empty_columns not in ("error", "keep", "zero"):
        raise typer.BadParameter("use error, keep or zero", param_hint="--empty-columns")
    con = Console(stderr=True)
    df = read_table(in_)
    exclude = list(exclude or [])
    unknown = [c for c in exclude if c not in df.columns]
    if unknown:
        raise typer.BadParameter(f"not a column of {in_.name}: {', '.join(unknown)}", param_hint="--exclude")
    cols = [c for c in df.columns if c not in exclude]
    imp = Imputer(method=method, n_imputations=n_imputations, empty_columns=empty_columns, random_state=seed)
    filled, spread = imp.fit_transform(df[cols], return_std=True)
    mask = imp.imputed_mask(df[cols])
    result = df.copy()
    result[cols] = filled
    write_table(result, out)
    ext = out.suffix if out.suffix.lower() in (".csv", ".parquet", ".pq") else ".csv"
    mpath = mask_out or out.with_name(out.stem + ".mask" + ext)
    import pandas as pd

    write_table(pd.DataFrame(mask, columns=cols), mpath)
    if std_out:
        write_table(spread, std_out)
    con.print(f"method: {imp.chosen_method_}; imputed {int(mask.sum())} of {mask.size} cells → {out} (mask: {mpath})", highlight=False)
    summ = {s["column"]: s for s in imp.summary()}
    for c, n in zip(cols, mask.sum(0), strict=True):
        if n:
            s = summ.get(str(c), {})
            err = f"; validation RMSE/range {s['validation_nrmse']}" if "validation_nrmse" in s else ""
            con.print(f"  {c}: {int(n)} cells imputed{err}", highlight=False)
