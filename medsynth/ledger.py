"""The privacy-budget ledger: named (ε, δ) budgets in SQLite, shared by every run of one ``$MEDSYNTH_HOME``.

Every differentially private step debits its (ε, δ) *before* it trains, inside one ``BEGIN IMMEDIATE``
transaction that re-reads what is left, so two processes can never overspend a budget together. A debit is
never refunded: if training then fails, the debit stays (conservative: the data may already have been touched)
and is marked ``failed`` with the error type.

Composition across debits is basic sequential composition (ε and δ add up). That is loose but always valid,
whatever accountant each step used to compute its own (ε, δ); each debit records its accountant.

    ledger = BudgetLedger()
    ledger.create("iu_reports", epsilon=8.0, delta=1e-5)
    with ledger.spend("iu_reports", epsilon=3.0, delta=1e-5, run_id=..., step="train", purpose="DP-SGD classifier",
                      accountant="rdp") as debit_id:
        train()                       # an exception marks the debit failed (and re-raises)
"""

from __future__ import annotations

import math
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .exceptions import MedsynthError, PrivacyBudgetExceededError

__all__ = ["Budget", "BudgetLedger", "BudgetNotFoundError", "default_ledger_path"]

#: tolerance for float sums (a debit equal to what is left is allowed)
_EPS_TOL = 1e-9

_SCHEMA = """
CREATE TABLE IF NOT EXISTS budgets (
  name TEXT PRIMARY KEY,
  epsilon REAL NOT NULL,
  delta REAL NOT NULL,
  description TEXT NOT NULL DEFAULT '',
  created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS debits (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  budget TEXT NOT NULL REFERENCES budgets(name),
  epsilon REAL NOT NULL,
  delta REAL NOT NULL,
  run_id TEXT NOT NULL DEFAULT '',
  step TEXT NOT NULL DEFAULT '',
  purpose TEXT NOT NULL DEFAULT '',
  accountant TEXT NOT NULL DEFAULT '',
  status TEXT NOT NULL DEFAULT 'debited',
  detail TEXT NOT NULL DEFAULT '',
  created_at TEXT NOT NULL,
  updated_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS debits_budget ON debits(budget);
"""


class BudgetNotFoundError(MedsynthError, KeyError):
    """A privacy budget name that the ledger does not hold."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def default_ledger_path() -> Path:
    from .paths import home

    return home() / "budget.sqlite"


@dataclass(frozen=True)
class Budget:
    name: str
    epsilon: float
    delta: float
    epsilon_spent: float
    delta_spent: float
    n_debits: int
    description: str = ""
    created_at: str = ""

    @property
    def epsilon_left(self) -> float:
        return max(0.0, self.epsilon - self.epsilon_spent)

    @property
    def delta_left(self) -> float:
        return max(0.0, self.delta - self.delta_spent)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.update(epsilon_left=self.epsilon_left, delta_left=self.delta_left)
        return d


def _check_eps_delta(epsilon: float, delta: float, what: str) -> None:
    if not (isinstance(epsilon, int | float) and math.isfinite(epsilon) and epsilon > 0):
        raise ValueError(f"{what}: epsilon must be a finite number > 0 (got {epsilon!r}).")
    if not (isinstance(delta, int | float) and math.isfinite(delta) and 0 <= delta < 1):
        raise ValueError(f"{what}: delta must be in [0, 1) (got {delta!r}); a usual choice is below 1/n for n records.")


class BudgetLedger:
    """SQLite-backed privacy budgets. Safe across processes (WAL, ``BEGIN IMMEDIATE`` around every debit)."""

    def __init__(self, path: str | Path | None = None, timeout: float = 60.0):
        self.path = Path(path) if path is not None else default_ledger_path()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.timeout = timeout
        with self._connect() as con:
            con.executescript(_SCHEMA)

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        con = sqlite3.connect(self.path, timeout=self.timeout, isolation_level=None)
        try:
            con.row_factory = sqlite3.Row
            con.execute("PRAGMA journal_mode=WAL")
            con.execute("PRAGMA synchronous=FULL")
            con.execute("PRAGMA foreign_keys=ON")
            yield con
        finally:
            con.close()

    # -- budgets ---------------------------------------------------------------------------------------
    def create(self, name: str, epsilon: float, delta: float, description: str = "", exist_ok: bool = False) -> Budget:
        """Create a named budget. With ``exist_ok`` an existing budget with the same (ε, δ) is returned; a
        different one is an error (a budget is never silently enlarged)."""
        if not name or not name.strip():
            raise ValueError("a privacy budget needs a non-empty name (e.g. the data set it protects).")
        _check_eps_delta(epsilon, delta, f"budget '{name}'")
        with self._connect() as con:
            con.execute("BEGIN IMMEDIATE")
            row = con.execute("SELECT * FROM budgets WHERE name=?", (name,)).fetchone()
            if row is not None:
                con.execute("ROLLBACK")
                if exist_ok and math.isclose(row["epsilon"], epsilon) and math.isclose(row["delta"], delta):
                    return self.get(name)
                raise MedsynthError(
                    f"privacy budget '{name}' already exists (ε={row['epsilon']:g}, δ={row['delta']:g}); budgets are "
                    f"never changed after creation. Use another name, or `medsynth budget show {name}`.")
            con.execute("INSERT INTO budgets(name, epsilon, delta, description, created_at) VALUES (?,?,?,?,?)",
                        (name, float(epsilon), float(delta), description, _now()))
            con.execute("COMMIT")
        return self.get(name)

    def _budget(self, con: sqlite3.Connection, name: str) -> Budget:
        row = con.execute("SELECT * FROM budgets WHERE name=?", (name,)).fetchone()
        if row is None:
            known = [r[0] for r in con.execute("SELECT name FROM budgets ORDER BY name")]
            raise BudgetNotFoundError(
                f"no privacy budget named '{name}' in {self.path}. Create it first: "
                f"`medsynth budget create {name} --epsilon E --delta D`. Known: {', '.join(known) or '(none)'}.")
        s = con.execute("SELECT COALESCE(SUM(epsilon),0), COALESCE(SUM(delta),0), COUNT(*) FROM debits WHERE budget=?",
                        (name,)).fetchone()
        return Budget(name=row["name"], epsilon=row["epsilon"], delta=row["delta"], epsilon_spent=float(s[0]),
                      delta_spent=float(s[1]), n_debits=int(s[2]), description=row["description"], created_at=row["created_at"])

    def get(self, name: str) -> Budget:
        with self._connect() as con:
            return self._budget(con, name)

    def exists(self, name: str) -> bool:
        with self._connect() as con:
            return con.execute("SELECT 1 FROM budgets WHERE name=?", (name,)).fetchone() is not None

    def budgets(self) -> list[Budget]:
        with self._connect() as con:
            names = [r[0] for r in con.execute("SELECT name FROM budgets ORDER BY name")]
            return [self._budget(con, n) for n in names]

    def history(self, name: str | None = None) -> list[dict[str, Any]]:
        with self._connect() as con:
            if name is not None:
                self._budget(con, name)
                rows = con.execute("SELECT * FROM debits WHERE budget=? ORDER BY id", (name,)).fetchall()
            else:
                rows = con.execute("SELECT * FROM debits ORDER BY id").fetchall()
            return [dict(r) for r in rows]

    # -- debits ----------------------------------------------------------------------------------------
    def check(self, name: str, epsilon: float, delta: float) -> None:
        """Raise PrivacyBudgetExceededError now if (ε, δ) does not fit what is left (no debit is made)."""
        _check_eps_delta(epsilon, delta, f"debit from '{name}'")
        b = self.get(name)
        self._raise_if_over(b, epsilon, delta)

    @staticmethod
    def _raise_if_over(b: Budget, epsilon: float, delta: float) -> None:
        if b.epsilon_spent + epsilon > b.epsilon + _EPS_TOL or b.delta_spent + delta > b.delta + _EPS_TOL * 1e-6:
            raise PrivacyBudgetExceededError(
                f"privacy budget '{b.name}' cannot pay ε={epsilon:g}, δ={delta:g}: it has ε={b.epsilon_left:g}, "
                f"δ={b.delta_left:g} left of ε={b.epsilon:g}, δ={b.delta:g} ({b.n_debits} earlier debits). Nothing was "
                f"trained. Lower the step's epsilon/delta, or use a new budget for new data "
                f"(`medsynth budget history {b.name}` lists what spent it).")

    def debit(self, name: str, epsilon: float, delta: float, *, run_id: str = "", step: str = "", purpose: str = "",
              accountant: str = "") -> int:
        """Debit (ε, δ) atomically; returns the debit id. Raises PrivacyBudgetExceededError (no debit made)."""
        _check_eps_delta(epsilon, delta, f"debit from '{name}'")
        with self._connect() as con:
            for attempt in range(50):
                try:
                    con.execute("BEGIN IMMEDIATE")
                    break
                except sqlite3.OperationalError as e:  # busy beyond the timeout: retry a little
                    if "locked" not in str(e) or attempt == 49:
                        raise
                    time.sleep(0.1)
            try:
                b = self._budget(con, name)
                self._raise_if_over(b, epsilon, delta)
                now = _now()
                cur = con.execute(
                    "INSERT INTO debits(budget, epsilon, delta, run_id, step, purpose, accountant, status, created_at, updated_at)"
                    " VALUES (?,?,?,?,?,?,?,?,?,?)",
                    (name, float(epsilon), float(delta), run_id, step, purpose, accountant, "debited", now, now))
                con.execute("COMMIT")
                return int(cur.lastrowid)
            except BaseException:
                con.execute("ROLLBACK")
                raise

    def mark(self, debit_id: int, status: str, detail: str = "") -> None:
        """Record what became of a debit (``trained``, ``failed``…). The amount is never changed or refunded."""
        with self._connect() as con:
            n = con.execute("UPDATE debits SET status=?, detail=?, updated_at=? WHERE id=?",
                            (status, detail, _now(), int(debit_id))).rowcount
        if n != 1:
            raise MedsynthError(f"no debit with id {debit_id} in {self.path}")

    @contextmanager
    def spend(self, name: str, epsilon: float, delta: float, **kw: str) -> Iterator[int]:
        """Debit, run the block, mark the debit ``trained`` or ``failed`` (the debit stays either way)."""
        debit_id = self.debit(name, epsilon, delta, **kw)
        try:
            yield debit_id
        except BaseException as e:
            self.mark(debit_id, "failed", f"{type(e).__name__} during the step; the debit stands (conservative)")
            raise
        self.mark(debit_id, "trained")
