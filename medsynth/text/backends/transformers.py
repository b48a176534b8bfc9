"""The default backend: local Hugging Face causal LMs (batched, left padding, KV cache; dtype and threads by measurement).

Sampling is made cheap for large vocabularies (Gemma: 262k tokens): a single logits processor takes the top-k
candidates first and applies top-p inside those k, instead of sorting the whole vocabulary for top-p.
"""

from __future__ import annotations

import hashlib
from collections import Counter
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

    ``prefix_sharing`` (default on): prompts of a batch that begin with the same tokens (header and few-shot block)
    share one encoding of that beginning; ``split_decoding`` (default on) lets rows that stopped leave the batch
    (see :meth:`generate` and :meth:`_decode`). ``dtype="auto"`` and no ``threads`` use the fastest dtype and thread
    count measured on this machine (medsynth/text/runtime.py; ``self.runtime`` says which and how). ``self.stats``
    counts prompt tokens given and actually encoded, prefixes encoded, generated tokens and decoding slots (for the
    run report).
    """

    name = "transformers"
    #: shared leading tokens that make a batch encode its prefix once (below this, re-encoding costs less than the copy)
    min_shared_prefix = 16

    def __init__(self, model: str | None = None, dtype: str = "auto", model_obj: Any = None, tokenizer_obj: Any = None,
                 model_sha256: str | None = None, adapter: str | None = None, max_context: int | None = None,
                 run_dir: str | None = None, merge_adapter: bool = True,
                 prefix_sharing: bool = True, split_decoding: bool = True, threads: int | None = None):
        if model_obj is not None:
            self.model, self.tokenizer = model_obj, tokenizer_obj
            self.info = {"name": model or type(model_obj).__name__, "model_sha256": model_sha256}
        else:
            from ..models import load_model

            self.model, self.tokenizer, self.info = load_model(model, dtype=dtype)
        if threads is not None and threads < 1:
            raise ModelNotAvailableError(f"threads must be at least 1 (got {threads}); leave it out to use the measured choice")
        rt = dict(self.info.get("runtime") or {})
        self.threads = threads or rt.get("threads")
        self.runtime = {"dtype": str(getattr(self.model, "dtype", "")).replace("torch.", ""), "threads": self.threads,
                        "how": "given" if threads else rt.get("how", "given"), "candidates": rt.get("candidates")}
        self.prefix_sharing = prefix_sharing
        self.split_decoding = split_decoding
        if adapter:
            self._load_adapter(adapter, run_dir, merge_adapter)
        if self.tokenizer.pad_token_id is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.tokenizer.padding_side = "left"
        cfg = getattr(self.model, "config", None)
        self._ctx = max_context or getattr(cfg, "max_position_embeddings", None)
        self._last_prefix: tuple[tuple[int, ...], Any] | None = None
        self.stats: Counter[str] = Counter()

    def _load_adapter(self, adapter: str, run_dir: str | None, merge: bool) -> None:
        try:
            from peft import PeftModel
        except ImportError as e:  # pragma: no cover
            from ...exceptions import MissingDependencyError

            raise MissingDependencyError("peft", purpose="loading a PEFT adapter") from e
        from ..adapt.files import resolve_adapter

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
            self.prefix_sharing = False  # prompt/prefix tuning prepends its own virtual-token cache
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
        """Batches of ``params.batch_size``, run with the backend's thread count. Prompts are tokenized once and
        grouped by their leading tokens (:meth:`_batches`), so prompts that share a beginning (a header and few-shot
        block) land in the same batch; a batch whose prompts share at least :attr:`min_shared_prefix` leading tokens
        encodes that prefix once and decodes from a copy of its KV cache (:meth:`_prefix_cache`) instead of
        re-encoding it for every prompt. Outputs are the same as without the shared prefix up to floating-point
        rounding (tested: greedy outputs are identical); sampled outputs are deterministic for a seed and prompt list."""
        import torch

        before = torch.get_num_threads()
        if self.threads:
            torch.set_num_threads(self.threads)
        try:
            return self._generate(prompts, params)
        finally:
            torch.set_num_threads(before)

    def _generate(self, prompts: list[str], params: GenParams) -> list[Completion]:
        import torch

        results: list[Completion | None] = [None] * len(prompts)
        ids = [self.tokenizer(p)["input_ids"] for p in prompts]
        # guard the context: a too-long prompt is a counted rejection, not a crash
        ok_idx = []
        for i, x in enumerate(ids):
            n = len(x)
            if self._ctx and n + params.max_new_tokens > self._ctx:
                results[i] = Completion("", n, 0, "error", {"error": "prompt_too_long", "prompt_tokens": n, "context": self._ctx})
            else:
                ok_idx.append(i)
        bs = params.batch_size
        pad = self.tokenizer.pad_token_id
        for b0, idxs in enumerate(self._batches(ok_idx, ids, bs)):
            rows = [ids[i] for i in idxs]
            shared = _common_prefix(rows) if len(rows) > 1 else 0
            shared = min(shared, min(len(r) for r in rows) - 1)  # every row keeps ≥ 1 token of its own
            use_prefix = self.prefix_sharing and shared >= self.min_shared_prefix
            cut = shared if use_prefix else 0
            width = max(len(r) - cut for r in rows)
            # the shared prefix, then each prompt's own tokens left-padded to the same width
            input_ids = torch.tensor([r[:cut] + [pad] * (width - len(r) + cut) + r[cut:] for r in rows])
            attn = torch.tensor([[1] * cut + [0] * (width - len(r) + cut) + [1] * (len(r) - cut) for r in rows])
            seed = int.from_bytes(hashlib.sha256(f"{params.seed}:{b0 * bs}".encode()).digest()[:4], "big")
            cache = None
            if use_prefix:
                cache = self._prefix_cache(rows[0][:cut], len(rows))
                self.stats["prefix_tokens_reused"] += cut * (len(rows) - 1)
            news = self._decode(input_ids, attn, cache, params, seed)
            self.stats["prompt_tokens"] += sum(len(r) for r in rows)
            self.stats["prompt_tokens_encoded"] += sum(len(r) - cut for r in rows)  # the prefix is counted where it is encoded
            self.stats["batches"] += 1
            eos = self.tokenizer.eos_token_id
            for i, new in zip(idxs, news, strict=True):
                ntok = sum(1 for t in new if t != pad) if pad is not None else len(new)
                text = self.tokenizer.decode(new, skip_special_tokens=True)
                finish = "length" if ntok >= params.max_new_tokens else "stop"
                for st in params.stop:
                    k = text.find(st)
                    if k >= 0:
                        text = text[:k]
                        finish = "stop"
                if eos is not None and eos in new:
                    finish = "stop"
                results[i] = Completion(text, len(ids[i]), ntok, finish, {})
                self.stats["completion_tokens"] += ntok
        return [r for r in results if r is not None]

    def _generate_kwargs(self, params: GenParams, max_new: int) -> dict[str, Any]:
        kwargs: dict[str, Any] = {"max_new_tokens": max_new, "pad_token_id": self.tokenizer.pad_token_id, "use_cache": True,
                                  "return_dict_in_generate": True}
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
        return kwargs

    def _decode(self, input_ids: Any, attn: Any, cache: Any, params: GenParams, seed: int) -> list[list[int]]:
        """The new tokens of each row (trailing padding removed). A batch decodes until its longest row stops, so
        with stop strings and ``split_decoding`` the batch first decodes half the token limit; the rows still
        running then continue alone from the same KV cache (nothing is re-encoded), and the rows that stopped no
        longer hold the batch."""
        import torch

        pad = self.tokenizer.pad_token_id
        eos = self.tokenizer.eos_token_id
        total = params.max_new_tokens
        first = total // 2 if (self.split_decoding and params.stop and total >= 24 and input_ids.shape[0] > 1) else total
        rows = list(range(input_ids.shape[0]))
        news: list[list[int]] = [[] for _ in rows]
        used, part = 0, 0
        while rows:
            n = first if part == 0 else total - used
            kwargs = self._generate_kwargs(params, n)
            if cache is not None:
                kwargs["cache"] = cache
            torch.manual_seed(seed if part == 0 else seed + 7919 * part)
            with torch.inference_mode():
                res = self.model.generate(input_ids=input_ids, attention_mask=attn, **kwargs)
            seq = res.sequences
            width = input_ids.shape[1]
            self.stats["decode_slots"] += len(rows) * (seq.shape[1] - width)
            going = []
            for j, r in enumerate(rows):
                toks = seq[j, width:].tolist()
                while toks and toks[-1] == pad:
                    toks.pop()
                news[r] += toks
                ended = len(toks) < n or (eos is not None and eos in toks)
                if not ended and params.stop:
                    text = self.tokenizer.decode(news[r], skip_special_tokens=True)
                    ended = any(st in text for st in params.stop)
                if not ended and used + n < total:
                    going.append(j)
            used += n
            part += 1
            if not going or seq.shape[1] - width < n:
                break
            keep = torch.tensor(going)
            cache = res.cache
            cache.batch_select_indices(keep)
            input_ids = seq[keep]
            attn = torch.cat([attn[keep], torch.ones(len(going), seq.shape[1] - width, dtype=attn.dtype)], dim=1)
            rows = [rows[j] for j in going]
            self.stats["continued_rows"] += len(going)
        return news

    def _batches(self, idx: list[int], ids: list[list[int]], bs: int) -> list[list[int]]:
        """Batches of ≤ ``bs`` prompts. Without prefix sharing: the caller's order. With it: prompts are grouped by
        their first :attr:`min_shared_prefix` tokens and ordered by token ids inside a group, a group fills its own
        batches (its prefix is encoded once), and prompts that share their beginning with no other go together."""
        if not self.prefix_sharing:
            return [idx[i : i + bs] for i in range(0, len(idx), bs)]
        k = self.min_shared_prefix
        groups: dict[tuple[int, ...], list[int]] = {}
        for i in idx:
            groups.setdefault(tuple(ids[i][:k]) if len(ids[i]) > k else (), []).append(i)
        out: list[list[int]] = []
        loose: list[int] = []
        for key, members in sorted(groups.items()):
            members.sort(key=lambda i: (ids[i], i))
            if key and len(members) > 1:
                out += [members[i : i + bs] for i in range(0, len(members), bs)]
            else:
                loose += members
        loose.sort(key=lambda i: (len(ids[i]), i))  # similar lengths together: less padding
        return out + [loose[i : i + bs] for i in range(0, len(loose), bs)]

    def _prefix_cache(self, prefix: list[int], batch: int) -> Any:
        """The KV cache of ``prefix`` repeated ``batch`` times. The last prefix's batch-1 cache is kept, so consecutive
        batches with the same prefix (a round of sentence requests split in several batches) encode it once."""
        import copy

        import torch
        from transformers import DynamicCache

        key = tuple(prefix)
        if self._last_prefix is None or self._last_prefix[0] != key:
            cache = DynamicCache(config=self.model.config)
            with torch.inference_mode():
                self.model(input_ids=torch.tensor([prefix]), cache=cache, use_cache=True, logits_to_keep=1)
            self._last_prefix = (key, cache)
            self.stats["prefixes_encoded"] += 1
            self.stats["prompt_tokens_encoded"] += len(prefix)
        with torch.inference_mode():
            cache = copy.deepcopy(self._last_prefix[1])
            cache.batch_repeat_interleave(batch)
        return cache


def _common_prefix(rows: list[list[int]]) -> int:
    """Length of the longest common prefix of token-id lists."""
    first = rows[0]
    n = min(len(r) for r in rows)
    for r in rows[1:]:
        k = 0
        while k < n and r[k] == first[k]:
            k += 1
        n = k
        if n == 0:
            break
    return n
