"""Generator backend contract.

A backend turns prompts into completions, batched, deterministically given a seed, and reports tokens.
Backends register by name in ``medsynth.registry.BACKENDS``; every registered backend passes the same
contract test (tests/text/test_backend_contract.py).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["GenParams", "Completion", "Backend"]


class GenParams(BaseModel):
    """Decoding parameters. ``top_k`` is applied before ``top_p`` (cheap sampling over large vocabularies)."""

    model_config = ConfigDict(extra="forbid")
    max_new_tokens: int = Field(160, ge=1, le=8192)
    temperature: float = Field(0.8, ge=0.0, le=5.0, description="0 = greedy")
    top_k: int | None = Field(50, ge=1)
    top_p: float | None = Field(0.95, gt=0.0, le=1.0)
    repetition_penalty: float | None = Field(None, ge=1.0)
    stop: list[str] = Field(default_factory=list, description="strings that end a completion (cut, not kept)")
    seed: int = 0
    batch_size: int = Field(8, ge=1)


@dataclass
class Completion:
    text: str
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str  # "stop" | "length" | "error"
    meta: dict[str, Any] = field(default_factory=dict)


class Backend(ABC):
    """Base class of generator backends."""

    name: str = "base"

    @abstractmethod
    def generate(self, prompts: list[str], params: GenParams) -> list[Completion]:
        """One completion per prompt, in order. Deterministic for a given ``params.seed`` and prompt list."""

    @property
    def model_id(self) -> str:  # human-readable model name
        return "unknown"

    @property
    def model_sha256(self) -> str | None:
        return None

    @property
    def identity(self) -> str:
        """What determines this backend's outputs besides prompt and params: the weights' sha256 (plus any adapter's),
        or the endpoint for remote servers. Used as the namespace of the generation cache (backends/cache.py)."""
        return f"{self.name}:{self.model_sha256 or self.model_id}"

    def count_tokens(self, text: str) -> int:
        return max(1, len(text) // 4)

    @property
    def context_length(self) -> int | None:
        return None

    def close(self) -> None:  # release resources
        pass
