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

    from ..tabular.imputers import METHODS, Imputer
    from ..tabular.io import read_table, write_table

    if method not in METHODS:
        raise typer.BadParameter(f"use one of {', '.join(METHODS)}", param_hint="--method")
    if empty_columns not in ("error", "keep", "zero"):
        raise typer.BadParameter("use error, keep or zero", param_hint="--empty-columns")
    from ..exceptions import DataFormatError
    from ..paths import same_file
    from ..tabular.imputers import EmptyColumnsError
    from ..tabular.io import WRITABLE

    con = Console(stderr=True)
    ext = out.suffix.lower()
    if ext not in WRITABLE:
        raise typer.BadParameter(f"cannot write '{out.suffix or 'no suffix'}' tables; name the output *.csv or *.parquet", param_hint="--out")
    mpath = mask_out or out.with_name(out.stem + ".mask" + out.suffix)
    outputs = {"--out": out, "--mask-out": mpath, **({"--std-out": std_out} if std_out else {})}
    for opt, p in outputs.items():
        if p.suffix.lower() not in WRITABLE:
            raise typer.BadParameter(f"cannot write '{p.suffix or 'no suffix'}' tables; use *.csv or *.parquet", param_hint=opt)
        if same_file(in_, p):
            raise typer.BadParameter(f"{p} is the input table itself; write the result to another file (the input is never overwritten)", param_hint=opt)
    paths = [p.resolve() for p in outputs.values()]
    if len(set(paths)) < len(paths):
        raise typer.BadParameter("the completed table, the mask and the spread must go to three different files", param_hint="--out/--mask-out/--std-out")
    df = read_table(in_)
    if df.shape[0] == 0:
        raise DataFormatError(f"{in_}: the table has a header but no rows; there is nothing to impute.")
    if df.shape[1] == 0:
        raise DataFormatError(f"{in_}: the table has no columns.")
    exclude = list(exclude or [])
    unknown = [c for c in exclude if c not in df.columns]
    if unknown:
        raise typer.BadParameter(f"not a column of {in_.name}: {', '.join(unknown)}", param_hint="--exclude")
    cols = [c for c in df.columns if c not in exclude]
    imp = Imputer(method=method, n_imputations=n_imputations, empty_columns=empty_columns, random_state=seed)
    if not cols:
        raise typer.BadParameter("every column is excluded; leave at least one column to impute", param_hint="--exclude")
    try:
        filled, spread = imp.fit_transform(df[cols], return_std=True)
    except EmptyColumnsError as e:
        raise DataFormatError(f"{in_}: {len(e.columns)} column(s) have no observed value ({', '.join(e.columns[:10])}"
                              f"{' …' if len(e.columns) > 10 else ''}), so nothing can be learned about them. Pass --exclude COLUMN to "
                              "leave them out, or --empty-columns keep (left missing) / --empty-columns zero (filled with 0).") from None
    mask = imp.imputed_mask(df[cols])
    result = df.copy()
    result[cols] = filled
    write_table(result, out)
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
