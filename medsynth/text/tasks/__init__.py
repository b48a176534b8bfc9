"""Tasks of the ``generate`` step: ``classification``, ``ner``, ``relations`` (registered in :data:`TASKS`)."""

from . import classification, ner, relations  # noqa: F401  (register)
from .base import TASKS, ParseResult, Task, get_task, mark_inline

__all__ = ["TASKS", "Task", "ParseResult", "get_task", "mark_inline"]
