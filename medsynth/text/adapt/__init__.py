"""Parameter-efficient adaptation of the generator (peft: LoRA, prefix tuning, prompt tuning), optional DP-SGD.

:mod:`.config` (methods, settings, documents), :mod:`.trainer` (the training loop and its DP-SGD), :mod:`.files`
(the adapter folder). Heavy libraries (torch, peft, opacus) are imported inside the functions that use them."""

from .config import DEFAULT_TEMPLATE, METHODS, DPConfig, MethodConfig, TrainConfig, TrainResult, render_document
from .files import ADAPTER_MANIFEST, resolve_adapter, save_adapter
from .trainer import train_adapter

__all__ = ["DEFAULT_TEMPLATE", "METHODS", "DPConfig", "MethodConfig", "TrainConfig", "TrainResult", "ADAPTER_MANIFEST",
           "render_document", "resolve_adapter", "save_adapter", "train_adapter"]
