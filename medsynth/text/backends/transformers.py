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
    ``model_obj``/``tokenizer_obj`` directly, e.g. tiny test models or an adapted model)."""

    name = "transformers"

    def __init__(self, model: str | None = None, dtype: str = "auto", model_obj: Any = None, tokenizer_obj: Any = None,
                 model_sha256: str | None = None, adapter: str | None = None, max_context: int | None = None):
        if model_obj is not None:
            self.model, self.tokenizer = model_obj, tokenizer_obj
            self.info = {"name": model or type(model_obj).__name__, "model_sha256": model_sha256}
        else:
            from ..models import load_model

            self.model, self.tokenizer, self.info = load_model(model, dtype=dtype)
        if adapter:
            try:
                from peft import PeftModel
            except ImportError as e:  # pragma: no cover
                raise ModelNotAvailableError("loading an adapter needs peft: pip install peft") from e
            self.model = PeftModel.from_pretrained(self.model, adapter).eval()
            self.info["adapter"] = adapter
        if self.tokenizer.pad_token_id is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.tokenizer.padding_side = "left"
        cfg = getattr(self.model, "config", None)
        self._ctx = max_context or getattr(cfg, "max_position_embeddings", None)

    @property
    def model_id(self) -> str:
        return str(self.info.get("name"))

    @property
    def model_sha256(self) -> str | None:
        return self.info.get("model_sha256")

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
