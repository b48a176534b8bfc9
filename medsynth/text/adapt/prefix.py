"""Prefix tuning (Li & Liang 2021; FewGen in the survey): trainable key/value vectors prepended to every attention
layer (``num_virtual_tokens`` positions); the backbone stays frozen."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from .config import METHODS, MethodConfig

__all__ = ["PrefixMethod"]


@METHODS.register("prefix")
class PrefixMethod(MethodConfig):
    type: Literal["prefix"] = "prefix"
    num_virtual_tokens: int = Field(16, ge=1, le=512)
    prefix_projection: bool = Field(False, description="reparametrise the prefix through an MLP (more parameters; not DP-supported here)")
    encoder_hidden_size: int = Field(256, ge=8)

    def peft_config(self, model: Any, tokenizer: Any) -> Any:
        from peft import PrefixTuningConfig, TaskType

        return PrefixTuningConfig(task_type=TaskType.CAUSAL_LM, num_virtual_tokens=self.num_virtual_tokens,
                                  prefix_projection=self.prefix_projection, encoder_hidden_size=self.encoder_hidden_size)
