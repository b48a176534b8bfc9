"""Adapter configuration: the method registry and its configs (one file per method: lora.py, prefix.py,
prompt_tuning.py), the training settings, the result of a training run, and how a record becomes a training
document (``template``, default ``"Findings list: {labels}\n{text}"``, the same block format the ``generate`` step's
few-shot prompts use). The DP settings are the DP core's (:class:`medsynth.dp.DPSettings`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from ...dp import DPSettings as DPConfig
from ...registry import Registry

__all__ = ["MethodConfig", "METHODS", "TrainConfig", "DPConfig", "TrainResult", "render_document", "DEFAULT_TEMPLATE"]

DEFAULT_TEMPLATE = "Findings list: {labels}\n{text}"

#: adaptation methods by name (one file each: lora.py, prefix.py, prompt_tuning.py)
METHODS: Registry[Any] = Registry("adaptation method", ["medsynth.text.adapt.lora", "medsynth.text.adapt.prefix",
                                                        "medsynth.text.adapt.prompt_tuning"])


class MethodConfig(BaseModel):
    """Base of a method's config (closed; ``type`` names the method)."""

    model_config = ConfigDict(extra="forbid")
    type: str

    def peft_config(self, model: Any, tokenizer: Any) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    def after_wrap(self, peft_model: Any, tokenizer: Any) -> None:
        """Hook to initialise the new parameters (e.g. prompt tuning from text)."""


class TrainConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    epochs: int = Field(3, ge=1, le=1000)
    batch_size: int = Field(8, ge=1, description="logical batch (expected Poisson batch under DP)")
    micro_batch_size: int = Field(4, ge=1, description="physical batch per forward/backward (memory); results do not depend on it")
    learning_rate: float = Field(2e-4, gt=0, le=1.0)
    weight_decay: float = Field(0.0, ge=0)
    max_length: int = Field(256, ge=8, le=8192, description="tokens per document (longer documents are truncated and counted)")
    seed: int = 0


@dataclass
class TrainResult:
    model: Any
    method: str
    steps: int
    seconds: float
    losses: list[float]
    trainable_params: int
    total_params: int
    n_documents: int
    truncated: int
    max_weight_delta: float
    dp: dict[str, Any] | None = None
    debit_id: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def render_document(text: str, labels: list[str], template: str = DEFAULT_TEMPLATE) -> str:
    """Fill ``{labels}`` (label words, as in the generate step's prompts) and ``{text}``; nothing else is evaluated."""
    from ..labels import LABEL_WORDS

    words = ", ".join(LABEL_WORDS.get(lab, lab.lower()) for lab in labels)
    return template.replace("{labels}", words).replace("{text}", text.strip())
