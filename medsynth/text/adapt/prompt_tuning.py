"""Prompt tuning (Lester et al. 2021; MSP in the survey): ``num_virtual_tokens`` trainable input embeddings
prepended to every document, initialised from the embeddings of ``init_text`` (or randomly)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from .config import METHODS, MethodConfig

__all__ = ["PromptTuningMethod"]


@METHODS.register("prompt_tuning")
class PromptTuningMethod(MethodConfig):
    type: Literal["prompt_tuning"] = "prompt_tuning"
    num_virtual_tokens: int = Field(16, ge=1, le=512)
    init_text: str | None = Field("Chest radiograph report with its list of findings.",
                                  description="initialise the soft prompt from these tokens' embeddings (repeated/cut to length); null = random")

    def peft_config(self, model: Any, tokenizer: Any) -> Any:
        from peft import PromptTuningConfig, PromptTuningInit, TaskType

        return PromptTuningConfig(task_type=TaskType.CAUSAL_LM, num_virtual_tokens=self.num_virtual_tokens,
                                  prompt_tuning_init=PromptTuningInit.RANDOM)

    def after_wrap(self, peft_model: Any, tokenizer: Any) -> None:
        # peft's TEXT init loads a tokenizer by name (a hub id); do the same from the tokenizer we already have
        if not self.init_text:
            return
        import torch

        ids = tokenizer(self.init_text, add_special_tokens=False)["input_ids"]
        if not ids:
            return
        ids = (ids * (self.num_virtual_tokens // len(ids) + 1))[: self.num_virtual_tokens]
        emb = peft_model.get_input_embeddings()
        enc = peft_model.prompt_encoder["default"].embedding
        with torch.no_grad():
            w = emb(torch.tensor(ids)).detach().to(enc.weight.dtype)
            # Gemma scales input embeddings by sqrt(hidden) inside its embedding module: copy what the model feeds in
            enc.weight.copy_(w)
