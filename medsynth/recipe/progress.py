"""Progress bars (rich) that show counts, tokens/s and ETA — never record text."""

from __future__ import annotations

import time
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, ProgressColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.text import Text

__all__ = ["ProgressHandle", "make_progress"]


class _TokensPerSecond(ProgressColumn):
    def render(self, task: Any) -> Text:
        tokens = task.fields.get("tokens", 0)
        if not tokens:
            return Text("")
        elapsed = task.elapsed or 1e-9
        return Text(f"{tokens / elapsed:,.1f} tok/s", style="cyan")


def make_progress(console: Console | None = None) -> Progress:
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

    def __init__(self, progress: Progress | None, total: int | None, description: str, unit: str = "records", completed: int = 0):
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
