"""Progress that shows counts, tokens/s and ETA — never record text.

On a terminal: rich progress bars. Without one (a log file, a scheduler, CI): :class:`PlainProgress`, a plain line
per task every ``MEDSYNTH_PROGRESS_EVERY`` seconds (default 30) and when it ends, so a long step is never silent.
"""

from __future__ import annotations

import time
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, ProgressColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.text import Text

__all__ = ["ProgressHandle", "make_progress", "PlainProgress"]


class _TokensPerSecond(ProgressColumn):
    def render(self, task: Any) -> Text:
        tokens = task.fields.get("tokens", 0)
        if not tokens:
            return Text("")
        elapsed = task.elapsed or 1e-9
        return Text(f"{tokens / elapsed:,.1f} tok/s", style="cyan")


class PlainProgress:
    """The subset of ``rich.progress.Progress`` medsynth uses, printing periodic plain lines instead of bars."""

    def __init__(self, console: Console, every: float | None = None):
        import os

        self.console = console
        self.every = float(every if every is not None else os.environ.get("MEDSYNTH_PROGRESS_EVERY", 30))
        self.tasks: dict[int, dict[str, Any]] = {}

    def start(self) -> None:
        pass

    def stop(self) -> None:
        for tid in list(self.tasks):
            self._finish(tid)

    def add_task(self, description: str, total: int | None = None, completed: int = 0, **fields: Any) -> int:
        tid = len(self.tasks)
        now = time.time()
        self.tasks[tid] = {"description": description, "total": total, "completed": completed, "start_completed": completed, "fields": fields,
                           "t0": now, "last": now, "open": True}
        return tid

    def update(self, task_id: int, advance: int = 0, refresh: bool = False, **fields: Any) -> None:
        t = self.tasks[task_id]
        t["completed"] += advance
        t["fields"].update(fields)
        now = time.time()
        done = refresh or (t["total"] is not None and t["completed"] >= t["total"])  # ProgressHandle.close refreshes at the end
        if done:
            self._finish(task_id)
        elif now - t["last"] >= self.every:
            t["last"] = now
            self._line(t, now)

    def _finish(self, task_id: int) -> None:
        t = self.tasks[task_id]
        if t["open"]:
            t["open"] = False
            self._line(t, time.time(), final=True)

    def _line(self, t: dict[str, Any], now: float, final: bool = False) -> None:
        el = max(now - t["t0"], 1e-9)
        done = t["completed"] - t["start_completed"]
        rate = done / el
        unit = t["fields"].get("unit", "")
        parts = [f"{t['description']}: {t['completed']}" + (f"/{t['total']}" if t["total"] is not None else "") + f" {unit}".rstrip(),
                 f"{rate:.2f} {unit or 'items'}/s"]
        if t["fields"].get("tokens"):
            parts.append(f"{t['fields']['tokens'] / el:,.0f} tok/s")
        parts.append(f"elapsed {el:.0f}s")
        if not final and t["total"] is not None and rate > 0:
            parts.append(f"ETA {(t['total'] - t['completed']) / rate:.0f}s")
        self.console.print(("done " if final else "") + ", ".join(parts), markup=False, highlight=False, soft_wrap=True)


def make_progress(console: Console | None = None) -> Progress | PlainProgress:
    console = console or Console(stderr=True)
    if not console.is_terminal:
        return PlainProgress(console)
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[unit]}"),
        _TokensPerSecond(),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        console=console,
        transient=False,
        refresh_per_second=4,
    )


class ProgressHandle:
    """What ``ctx.progress(...)`` returns. ``advance(n, tokens=...)``; usable as a context manager."""

    def __init__(self, progress: Progress | PlainProgress | None, total: int | None, description: str, unit: str = "records", completed: int = 0):
        self._p = progress
        self.total = total
        self.done = completed
        self.tokens = 0
        self.started = time.time()
        self._task = progress.add_task(description, total=total, completed=completed, unit=unit, tokens=0) if progress else None

    def advance(self, n: int = 1, tokens: int = 0) -> None:
        self.done += n
        self.tokens += tokens
        if self._p is not None and self._task is not None:
            self._p.update(self._task, advance=n, tokens=self.tokens)

    def close(self) -> None:
        if self._p is not None and self._task is not None:
            self._p.update(self._task, refresh=True)

    def __enter__(self) -> ProgressHandle:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
