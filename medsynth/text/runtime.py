"""Runtime configuration of local generation, chosen by measurement on this machine (dtype and CPU threads).

Whether bf16 is faster than fp32 on a CPU is not a question of flags alone: a CPU with AVX-512 but no AVX512-BF16/AMX
runs bf16 matrix products through conversions and can be several times slower than fp32, and on a shared box one
thread can beat two. So on first use per machine and model, :func:`choose_runtime` times the same small generation
workload (a batch of prompts encoded, then greedy decoding steps: the two costs of the generate step) for each
candidate dtype and thread count, and keeps the fastest. The choice is cached in
``$MEDSYNTH_HOME/cache/runtime.json`` under the model's sha256, the torch version and a signature of the CPU (model
name, flags, usable cores), so it is measured again when any of them changes. int8 dynamic quantisation was measured
too (docs/benchmarks.md) and is not a candidate: 1.27x faster prefill, but greedy outputs changed in 26 of 32
sentence requests, many into unusable text.

A recipe overrides the choice with ``backend_options: {dtype: float32, threads: 2}``; ``MEDSYNTH_DTYPE`` overrides
the dtype for every run.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path
from typing import Any

__all__ = ["choose_runtime", "cpu_signature", "runtime_cache_path", "candidate_threads"]

_DTYPES = ("float32", "bfloat16")


def runtime_cache_path() -> Path:
    from ..paths import home

    return home() / "cache" / "runtime.json"


def _usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover  (not Linux)
        return os.cpu_count() or 1


def cpu_signature() -> str:
    """What the speed of a dtype/thread choice depends on: CPU model name, flags and the cores this process may use."""
    model, flags = "", ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name") and not model:
                model = line.split(":", 1)[1].strip()
            if line.startswith("flags") and not flags:
                flags = " ".join(sorted(line.split(":", 1)[1].split()))
    except OSError:  # pragma: no cover
        import platform

        model = platform.processor()
    return hashlib.sha256(f"{model}|{flags}|{_usable_cores()}".encode()).hexdigest()[:16]


def candidate_threads() -> list[int]:
    n = _usable_cores()
    return sorted({1, n} | ({n // 2} if n >= 4 else set()))


def _workload(model: Any, tokenizer: Any, batch: int, prompt_tokens: int, decode_steps: int) -> float:
    """Seconds for one batch: encode ``batch`` prompts of ``prompt_tokens`` tokens, then ``decode_steps`` greedy steps."""
    import torch

    vocab = int(getattr(model.config, "vocab_size", 1000))
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(10, max(11, min(vocab, 30000)), (batch, prompt_tokens), generator=g)
    attn = torch.ones_like(ids)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    with torch.inference_mode():
        t0 = time.perf_counter()
        model.generate(input_ids=ids, attention_mask=attn, max_new_tokens=decode_steps, min_new_tokens=decode_steps, do_sample=False,
                       pad_token_id=pad, top_k=None, top_p=None, temperature=None)
        return time.perf_counter() - t0


def _measure(model: Any, tokenizer: Any, dtypes: tuple[str, ...], threads: list[int], batch: int, prompt_tokens: int,
             decode_steps: int) -> list[dict[str, Any]]:
    import copy

    import torch

    before = torch.get_num_threads()
    rows: list[dict[str, Any]] = []
    try:
        fastest = float("inf")
        for dt in dtypes:
            m = model if dt == "float32" else copy.deepcopy(model).to(getattr(torch, dt))
            for t in sorted(threads, reverse=True):  # most threads first: a dtype that is slow with all cores is skipped below
                if rows and rows[-1]["dtype"] == dt and rows[-1]["seconds"] > 2 * fastest:
                    rows.append({"dtype": dt, "threads": t, "seconds": None, "tokens_per_s": None,
                                 "skipped": f"{dt} with {rows[-1]['threads']} threads took over twice the fastest"})
                    continue
                torch.set_num_threads(t)
                _workload(m, tokenizer, 2, 8, 2)  # warm-up
                sec = _workload(m, tokenizer, batch, prompt_tokens, decode_steps)
                if sec < 1.5 * fastest:  # a contender: best of two
                    sec = min(sec, _workload(m, tokenizer, batch, prompt_tokens, decode_steps))
                fastest = min(fastest, sec)
                rows.append({"dtype": dt, "threads": t, "seconds": round(sec, 3),
                             "tokens_per_s": round(batch * (prompt_tokens + decode_steps) / sec, 1)})
            if m is not model:
                del m
    finally:
        torch.set_num_threads(before)
    return rows


def choose_runtime(model: Any, tokenizer: Any, model_sha256: str, *, cache_path: Path | None = None, force: bool = False,
                   signature: str | None = None, batch: int = 8, prompt_tokens: int = 64, decode_steps: int = 8,
                   dtypes: tuple[str, ...] = _DTYPES) -> dict[str, Any]:
    """The fastest (dtype, threads) for ``model`` (loaded in float32) on this machine, measured once and cached.

    Returns ``{"dtype", "threads", "how": "measured" | "cached", "candidates": [{dtype, threads, seconds,
    tokens_per_s}], "workload": ..., "signature": ...}``."""
    import torch

    path = cache_path or runtime_cache_path()
    sig = signature or cpu_signature()
    key = f"{model_sha256}|{sig}|torch {torch.__version__}"
    table: dict[str, Any] = {}
    if path.exists():
        try:
            table = json.loads(path.read_text())
        except (OSError, ValueError):
            table = {}
    if not force and isinstance(table.get(key), dict) and table[key].get("dtype") in dtypes:
        return {**table[key], "how": "cached"}
    rows = _measure(model, tokenizer, dtypes, candidate_threads(), batch, prompt_tokens, decode_steps)
    best = min((r for r in rows if r["seconds"] is not None), key=lambda r: r["seconds"])
    entry = {"dtype": best["dtype"], "threads": best["threads"], "candidates": rows, "signature": sig,
             "workload": f"{batch} prompts of {prompt_tokens} tokens encoded + {decode_steps} greedy decoding steps (best of 2 for "
                         "contenders; a dtype over twice the fastest with all cores is not tried with fewer)",
             "measured_at": time.strftime("%Y-%m-%dT%H:%M:%S")}
    table[key] = entry
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + f".tmp-{os.getpid()}")
    tmp.write_text(json.dumps(table, indent=2))
    os.replace(tmp, path)
    return {**entry, "how": "measured"}
