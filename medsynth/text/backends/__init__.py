"""Generator backends, registered by name in ``medsynth.registry.BACKENDS``."""

from . import llamacpp, openai_http, transformers  # noqa: F401  (register on import; heavy imports happen inside)
from .base import Backend, Completion, GenParams
from .cache import CachedBackend

__all__ = ["Backend", "CachedBackend", "Completion", "GenParams", "get_backend"]


def get_backend(name: str, **kwargs) -> Backend:
    from ...registry import BACKENDS

    return BACKENDS.get(name)(**kwargs)
