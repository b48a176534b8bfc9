"""Name → factory registries.

Every pluggable part of medsynth (steps, prompt strategies, backends, audits, imputers, models) is registered
by name in one :class:`Registry`. Adding an implementation means adding a file with a ``@REGISTRY.register``
decorator and importing it from the package's ``_builtin`` list; the engine is never touched. Third-party
packages can add entries via the ``medsynth.plugins`` entry-point group (each entry point is a module that
registers on import).
"""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Callable, Iterator
from typing import Any, Generic, TypeVar

from .exceptions import RecipeError

__all__ = ["Registry", "STEPS", "STRATEGIES", "BACKENDS", "AUDITS", "IMPUTERS", "MODELS", "load_plugins", "all_registries"]

T = TypeVar("T")


class Registry(Generic[T]):
    """A named collection of factories with lazy population.

    ``modules`` lists modules imported on first lookup so that heavy implementations are only loaded when
    the registry is used.
    """

    def __init__(self, kind: str, modules: list[str] | None = None):
        self.kind = kind
        self._items: dict[str, T] = {}
        self._modules = list(modules or [])
        self._loaded = False

    def register(self, name: str, obj: T | None = None) -> Callable[[T], T] | T:
        def deco(o: T) -> T:
            if name in self._items and self._items[name] is not o:
                raise ValueError(f"{self.kind} '{name}' is registered twice")
            self._items[name] = o
            return o

        return deco(obj) if obj is not None else deco

    def add_module(self, module: str) -> None:
        self._modules.append(module)
        self._loaded = False

    def _load(self) -> None:
        if self._loaded:
            return
        self._loaded = True
        for mod in self._modules:
            try:
                importlib.import_module(mod)
            except ModuleNotFoundError as e:  # the implementing package is not part of this install
                if e.name is None or not (e.name == mod or mod.startswith(e.name + ".")):
                    raise

    def get(self, name: str) -> T:
        self._load()
        try:
            return self._items[name]
        except KeyError:
            close = difflib.get_close_matches(name, list(self._items), n=1)
            hint = f" Did you mean '{close[0]}'?" if close else ""
            raise RecipeError(
                f"Unknown {self.kind} '{name}'.{hint} Known: {', '.join(sorted(self._items)) or '(none)'}. "
                f"Run `medsynth list` to see every registered name."
            ) from None

    def __contains__(self, name: object) -> bool:
        self._load()
        return name in self._items

    def names(self) -> list[str]:
        self._load()
        return sorted(self._items)

    def items(self) -> Iterator[tuple[str, T]]:
        self._load()
        return iter(sorted(self._items.items()))


# Built-in registries. The module lists are filled by the packages that implement them.
STEPS: Registry[Any] = Registry("step", ["medsynth.steps"])
STRATEGIES: Registry[Any] = Registry("prompt strategy", ["medsynth.text.prompts"])
BACKENDS: Registry[Any] = Registry("generator backend", ["medsynth.text.backends"])
AUDITS: Registry[Any] = Registry("audit", ["medsynth.audit"])
IMPUTERS: Registry[Any] = Registry("imputer", ["medsynth.tabular"])
MODELS: Registry[Any] = Registry("model", ["medsynth.text.models"])


def all_registries() -> dict[str, Registry[Any]]:
    return {"steps": STEPS, "strategies": STRATEGIES, "backends": BACKENDS, "audits": AUDITS,
            "imputers": IMPUTERS, "models": MODELS}


def load_plugins() -> list[str]:
    """Import every module advertised under the ``medsynth.plugins`` entry-point group, plus the modules named in
    the ``MEDSYNTH_PLUGINS`` environment variable (comma-separated), e.g. a site's own steps."""
    import os
    from importlib.metadata import entry_points

    loaded = []
    for mod in filter(None, (m.strip() for m in os.environ.get("MEDSYNTH_PLUGINS", "").split(","))):
        importlib.import_module(mod)
        loaded.append(mod)
    for ep in entry_points(group="medsynth.plugins"):
        ep.load()
        loaded.append(ep.name)
    return loaded
