"""Parameter-efficient adaptation of the generator (peft: LoRA, prefix tuning, prompt tuning), optional DP-SGD.

Heavy libraries (torch, peft, opacus) are imported inside the functions that use them."""

from .base import (DEFAULT_TEMPLATE, METHODS, DPConfig, MethodConfig, TrainConfig, TrainResult, render_document,
                   resolve_adapter, save_adapter, train_adapter)

__all__ = ["DEFAULT_TEMPLATE", "METHODS", "DPConfig", "MethodConfig", "TrainConfig", "TrainResult",
           "render_document", "resolve_adapter", "save_adapter", "train_adapter"]
