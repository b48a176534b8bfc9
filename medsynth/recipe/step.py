"""The step contract. Every recipe step is a :class:`Step` subclass with a closed pydantic ``Config``
(``extra="forbid"``), registered in ``registry.STEPS`` by :func:`register_step`. A step's name is said once, in its
config's ``type: Literal["name"] = "name"`` (the field recipes are validated against); the class's ``type`` and
its registry key are read from there.

A step reads named datasets, writes one named dataset, and records what it did (report figures, artifacts,
quarantined records). Long steps work in batches through :meth:`StepContext.pending_batches` /
:meth:`StepContext.commit_batch` so that a killed run resumes at the first unfinished batch.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field, field_validator

from ..paths import check_name

if TYPE_CHECKING:  # pragma: no cover
    from .engine import StepContext

__all__ = ["StepConfig", "Step", "StepPlan", "register_step", "eval_object"]


class StepConfig(BaseModel):
    """Fields every step has. Subclasses add their own and keep ``extra="forbid"``."""

    model_config = ConfigDict(extra="forbid")
    type: str
    name: str | None = Field(None, description="step id in the run dir (default: the type, numbered if repeated)")
    input: str | list[str] | None = Field(None, description="dataset(s) read; default: the previous step's output")
    output: str | None = Field(None, description="dataset written; default: the step name")

    @field_validator("name", "output")
    @classmethod
    def _identifier(cls, v: str | None) -> str | None:
        return None if v is None else check_name(v, "a step or dataset name")

    @field_validator("input")
    @classmethod
    def _identifiers(cls, v: str | list[str] | None) -> str | list[str] | None:
        for x in [v] if isinstance(v, str) else v or []:
            check_name(x, "a dataset name")
        return v


def eval_object(v: Any) -> Any:
    """Every step's ``eval:`` is an object whose ``real:`` names the held-out dataset(s); ``eval: name`` (or a list
    of names) is shorthand for ``eval: {real: name}`` in every step. Use as a ``mode="before"`` validator."""
    return {"real": v} if isinstance(v, (str, list)) else v


@dataclass
class StepPlan:
    """What a step will do, for ``--dry-run``. Estimates, not promises."""

    records_in: int | None = None
    records_out: int | None = None
    est_tokens: int | None = None
    est_seconds: float | None = None
    epsilon: float | None = None
    delta: float | None = None
    budget: str | None = None
    notes: list[str] = field(default_factory=list)


C = TypeVar("C", bound=StepConfig)


class Step(ABC, Generic[C]):
    """Base class of recipe steps, generic over its config: ``class ScrubStep(Step[ScrubConfig])`` gives
    ``self.config`` the type ``ScrubConfig``."""

    type: ClassVar[str]
    Config: ClassVar[type[StepConfig]] = StepConfig
    #: bump when the step's behaviour changes, so cached outputs are invalidated
    version: ClassVar[str] = "1"

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cfg = cls.__dict__.get("Config")
        if cfg is None:
            return
        name = cfg.model_fields["type"].default
        if not isinstance(name, str):
            raise TypeError(f"{cls.__name__}.Config must declare `type: Literal[\"<name>\"] = \"<name>\"` (the step's one name)")
        if "type" in cls.__dict__ and cls.__dict__["type"] != name:
            raise TypeError(f"{cls.__name__}.type is '{cls.__dict__['type']}' but its Config's type is '{name}'; say the name once, in the Config")
        cls.type = name

    def __init__(self, config: C, recipe: Any = None):
        self.config: C = config
        self.recipe = recipe

    def check(self, recipe: Any) -> list[tuple[str, str]]:
        """Cheap checks before any compute (files exist, models installed…): ``[(field, problem+fix)]``."""
        return []

    def plan(self, input_sizes: dict[str, int | None]) -> StepPlan:
        n = sum(v for v in input_sizes.values() if v) if input_sizes else None
        return StepPlan(records_in=n, records_out=n)

    #: what the step's time scales with, for measured dry-run estimates (medsynth/recipe/rates.py)
    rate_unit: ClassVar[str] = "records_in"

    def rate_key(self) -> dict[str, Any]:
        """The parts of the config that drive the step's cost per record (measured rates are kept per key)."""
        return {"type": self.config.type}

    def calibrate(self, home: Any) -> dict[str, Any] | None:
        """Measure this machine's cost for this step once (e.g. seconds per generation batch), for a dry-run
        estimate; None: cannot. Cached by the engine; read back by :meth:`estimate_from_calibration`."""
        return None

    def estimate_from_calibration(self, cal: dict[str, Any]) -> tuple[float, str]:
        """(seconds, how) from a calibration made by :meth:`calibrate`."""
        raise NotImplementedError

    def extra_outputs(self) -> list[str]:
        """Names of datasets this step writes besides its main output (``ctx.write_output(..., name=...)``)."""
        return []

    def cache_key_extra(self) -> dict[str, Any]:
        """Extra things the step's cache key depends on (e.g. a model's sha256)."""
        return {}

    @abstractmethod
    def run(self, ctx: StepContext) -> None:
        """Do the work: read ``ctx.inputs()``, write ``ctx.write_output(...)``."""


def register_step(cls: type[Step]) -> type[Step]:
    """Class decorator: register a step under the name its Config declares."""
    from ..registry import STEPS

    STEPS.register(cls.type, cls)
    return cls
