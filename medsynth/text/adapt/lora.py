"""LoRA (Hu et al. 2022): trainable low-rank updates ΔW = B·A (rank r, scaled by alpha/r) on the attention (and
optionally MLP) projections; the backbone stays frozen. Merged into the weights for generation (no extra latency)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from .config import METHODS, MethodConfig

__all__ = ["LoraMethod"]


@METHODS.register("lora")
class LoraMethod(MethodConfig):
    type: Literal["lora"] = "lora"
    r: int = Field(8, ge=1, le=256, description="rank of the update")
    alpha: float = Field(16.0, gt=0, description="scaling: ΔW·alpha/r")
    dropout: float = Field(0.0, ge=0, lt=1, description="dropout on the LoRA input (0 under DP keeps per-sample grads exact)")
    target_modules: list[str] = Field(default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj"],
                                      description="module names to adapt (Gemma/Llama attention projections; add gate_proj, up_proj, down_proj for the MLP)")

    def peft_config(self, model: Any, tokenizer: Any) -> Any:
        from peft import LoraConfig, TaskType

        present = {n.rsplit(".", 1)[-1] for n, _ in model.named_modules()}
        missing = [t for t in self.target_modules if t not in present]
        if missing:
            from ...exceptions import RecipeError

            raise RecipeError(f"lora.target_modules: {missing} not found in the model; it has e.g. "
                              f"{sorted(p for p in present if p.endswith('proj'))[:8]}.")
        return LoraConfig(r=self.r, lora_alpha=self.alpha, lora_dropout=self.dropout, target_modules=list(self.target_modules),
                          task_type=TaskType.CAUSAL_LM, bias="none")
