"""The default backend: local Hugging Face causal LMs (batched, left padding, bf16 where supported, KV cache).

Sampling is made cheap for large vocabularies (Gemma: 262k tokens): a single logits processor takes the top-k
candidates first and applies top-p inside those k, instead of sorting the whole vocabulary for top-p.
"""

from __future__ import annotations

import hashlib
from typing import Any

from ...exceptions import ModelNotAvailableError
from ...registry import BACKENDS
from .base import Backend, Completion, GenParams

__all__ = ["TransformersBackend", "TopKTopP"]


class TopKTopP:
    """LogitsProcessor: keep the top-k logits, then the smallest prefix of them whose probability mass ≥ top_p."""

    def __init__(self, top_k: int | None, top_p: float | None, temperature: float):
        self.top_k = top_k or 50
        self.top_p = top_p if top_p is not None else 1.0
        self.temperature = max(temperature, 1e-5)

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        import torch

        scores = scores.float() / self.temperature
        k = min(self.top_k, scores.shape[-1])
        vals, idx = torch.topk(scores, k, dim=-1)  # sorted descending
        if self.top_p < 1.0:
            probs = torch.softmax(vals, dim=-1)
            cum = probs.cumsum(-1)
            remove = (cum - probs) > self.top_p  # keep the first token always
            vals = vals.masked_fill(remove, float("-inf"))
        out = torch.full_like(scores, float("-inf"))
        return out.scatter(-1, idx, vals)


@BACKENDS.register("transformers")
class TransformersBackend(Backend):
    """Local generation with transformers. ``model`` is a registry name or a local HF folder (or pass
    ``model_obj``/``tokenizer_obj`` directly, e.g. tiny test models or an adapted model).

    ``adapter`` loads a PEFT adapter written by the ``adapt`` step (medsynth/text/adapt/): a folder path, or
    ``"step:<adapt step name>"`` resolved inside ``run_dir`` (the current run directory). The adapter's files are
    checked against the sha256s in its ``medsynth_adapter.json`` and its base model against the loaded model. A LoRA
    adapter is merged into the weights for generation (``merge_adapter=True``: same speed as the base model).
    The adapter's sha256 is part of :attr:`identity` and :attr:`model_id` (provenance, generation cache).
    """

    name = "transformers"

    def __init__(self, model: str | None = None, dtype: str = "auto", model_obj: Any = None, tokenizer_obj: Any = None,
                 model_sha256: str | None = None, adapter: str | None = None, max_context: int | None = None,
                 run_dir: str | None = None, merge_adapter: bool = True):
        if model_obj is not None:
            self.model, self.tokenizer = model_obj, tokenizer_obj
            self.info = {"name": model or type(model_obj).__name__, "model_sha256": model_sha256}
        else:
            from ..models import load_model

            self.model, self.tokenizer, self.info = load_model(model, dtype=dtype)
        if adapter:
            self._load_adapter(adapter, run_dir, merge_adapter)
        if self.tokenizer.pad_token_id is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.tokenizer.padding_side = "left"
        cfg = getattr(self.model, "config", None)
        self._ctx = max_context or getattr(cfg, "max_position_embeddings", None)

    def _load_adapter(self, adapter: str, run_dir: str | None, merge: bool) -> None:
        try:
            from peft import PeftModel
        except ImportError as e:  # pragma: no cover
            from ...exceptions import MissingDependencyError

            raise MissingDependencyError("peft", purpose="loading a PEFT adapter") from e
        from ..adapt.base import resolve_adapter

        path, manifest = resolve_adapter(adapter, run_dir)
        base_sha = manifest.get("base_model_sha256")
        have = self.info.get("model_sha256")
        if base_sha and have and base_sha != have:
            raise ModelNotAvailableError(
                f"The adapter at {path} was trained on a model with sha256 {base_sha[:12]}…, but the loaded model "
                f"'{self.info.get('name')}' has sha256 {have[:12]}…. Load the model it was trained on "
                f"('{manifest.get('base_model')}') or re-run the adapt step.")
        peft_model = PeftModel.from_pretrained(self.model, str(path))
        method = manifest.get("method") or str(getattr(peft_model.peft_config.get("default"), "peft_type", ""))
        if merge and str(method).lower().endswith("lora"):
            self.model = peft_model.merge_and_unload().eval()
        else:
            self.model = peft_model.eval()
        self.info.update(adapter=str(path), adapter_sha256=manifest.get("adapter_sha256"), adapter_method=method)

    @property
    def model_id(self) -> str:
        a = self.info.get("adapter_sha256")
        return f"{self.info.get('name')}+adapter:{a[:12]}" if a else str(self.info.get("name"))

    @property
    def model_sha256(self) -> str | None:
        return self.info.get("model_sha256")

    @property
    def adapter_sha256(self) -> str | None:
        return self.info.get("adapter_sha256")

    @property
    def identity(self) -> str:
        base = f"transformers:{self.model_sha256 or self.model_id}"
        return base + (f"+adapter:{self.adapter_sha256}" if self.adapter_sha256 else "")

    @property
    def context_length(self) -> int | None:
        return self._ctx

    def count_tokens(self, text: str) -> int:
        return len(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def generate(self, prompts: list[str], params: GenParams) -> list[Completion]:
        import torch

        results: list[Completion | None] = [None] * len(prompts)
        # guard the context: a too-long prompt is a counted rejection, not a crash
        ok_idx = []
        for i, p in enumerate(prompts):
            n = self.count_tokens(p)
            if self._ctx and n + params.max_new_tokens > self._ctx:
                results[i] = Completion("", n, 0, "error", {"error": "prompt_too_long", "prompt_tokens": n, "context": self._ctx})
            else:
                ok_idx.append(i)
        bs = params.batch_size
        for b0 in range(0, len(ok_idx), bs):
            idxs = ok_idx[b0 : b0 + bs]
            batch = [prompts[i] for i in idxs]
            enc = self.tokenizer(batch, return_tensors="pt", padding=True)
            seed = int.from_bytes(hashlib.sha256(f"{params.seed}:{b0}".encode()).digest()[:4], "big")
            torch.manual_seed(seed)
            kwargs: dict[str, Any] = {"max_new_tokens": params.max_new_tokens, "pad_token_id": self.tokenizer.pad_token_id, "use_cache": True}
            if params.temperature > 0:
                from transformers import LogitsProcessorList

                kwargs.update(do_sample=True, top_k=None, top_p=None, temperature=None,
                              logits_processor=LogitsProcessorList([TopKTopP(params.top_k, params.top_p, params.temperature)]))
            else:
                kwargs.update(do_sample=False, top_k=None, top_p=None, temperature=None)
            if params.repetition_penalty:
                kwargs["repetition_penalty"] = params.repetition_penalty
            if params.stop:
                kwargs.update(stop_strings=list(params.stop), tokenizer=self.tokenizer)
            with torch.inference_mode():
                out = self.model.generate(**enc, **kwargs)
            plen = enc["input_ids"].shape[1]
            for j, i in enumerate(idxs):
                new = out[j, plen:]
                mask = new != self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else torch.ones_like(new, dtype=torch.bool)
                ntok = int(mask.sum())
                text = self.tokenizer.decode(new, skip_special_tokens=True)
                finish = "length" if ntok >= params.max_new_tokens else "stop"
                for s in params.stop:
                    k = text.find(s)
                    if k >= 0:
                        text = text[:k]
                        finish = "stop"
                eos = self.tokenizer.eos_token_id
                if eos is not None and (new == eos).any():
                    finish = "stop"
                results[i] = Completion(text, int(enc["attention_mask"][j].sum()), ntok, finish, {})
        return [r for r in results if r is not None]
