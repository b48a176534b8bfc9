"""``medsynth impute``: complete a CSV/parquet table, writing the mask of imputed cells next to it."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

__all__ = ["impute_cmd"]


def _read(path: Path):  # type: ignore[no-untyped-def]
    import pandas as pd

    from ..exceptions import DataFormatError

    if not path.exists():
        raise DataFormatError(f"{path}: not found.")
    if path.suffix.lower() in (".parquet", ".pq"):
        return pd.read_parquet(path)
    try:
        return pd.read_csv(path, encoding="utf-8")
    except UnicodeDecodeError:
        raise DataFormatError(f"{path}: not valid UTF-8. Re-encode the file as UTF-8.") from None


def _write(df, path: Path) -> None:  # type: ignore[no-untyped-def]
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix.lower() in (".parquet", ".pq"):
        df.to_parquet(path)
    else:
        df.to_csv(path, index=False)


def impute_cmd(in_: Annotated[Path, typer.Option("--in", help="table (.csv or .parquet)")],
               out: Annotated[Path, typer.Option("--out", help="completed table (.csv or .parquet)")],
               method: Annotated[str, typer.Option("--method", help="auto | chained | hgb | mice | missforest | knn | mean")] = "auto",
               mask_out: Annotated[Path | None, typer.Option("--mask-out", help="mask of imputed cells (default: <out>.mask.csv)")] = None,
               std_out: Annotated[Path | None, typer.Option("--std-out", help="per-cell spread of the imputed values")] = None,
               n_imputations: Annotated[int, typer.Option("--n-imputations", min=1)] = 1,
               seed: Annotated[int, typer.Option("--seed")] = 0) -> None:
    """Impute missing cells; observed cells are never changed. Prints a per-column summary (counts only)."""
    from rich.console import Console

    from .imputers import METHODS, Imputer

    if method not in METHODS:
        raise typer.BadParameter(f"use one of {', '.join(METHODS)}", param_hint="--method")
    con = Console(stderr=True)
    df = _read(in_)
    imp = Imputer(method=method, n_imputations=n_imputations, random_state=seed).fit(df)
    mask = imp.imputed_mask(df)
    filled, spread = imp.transform(df, return_std=True)
    _write(filled, out)
    mpath = mask_out or out.with_name(out.stem + ".mask.csv")
    import pandas as pd

    mdf = pd.DataFrame(mask, columns=df.columns)
    _write(mdf, mpath)
    if std_out:
        _write(spread, std_out)
    con.print(f"method: {getattr(imp, 'chosen_method_', method)}; imputed {int(mask.sum())} of {mask.size} cells → {out} (mask: {mpath})")
    for c, n in zip(df.columns, mask.sum(0), strict=True):
        if n:
            con.print(f"  {c}: {int(n)} cells imputed", highlight=False)
