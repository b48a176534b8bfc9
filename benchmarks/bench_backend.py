"""Generation throughput: medsynth's transformers backend vs a bare ``model.generate`` loop on the same model,
prompts, batch size and hardware, measured in the same run (ratios), plus model load times.

Usage: python benchmarks/bench_backend.py [--prompts 32] [--batch 8] [--new 96]
"""

from __future__ import annotations

import argparse
import json
import time

from harness import ROOT, save  # noqa: E402  (path setup, machine capture, result writing)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="gemma3-270m")
    ap.add_argument("--prompts", type=int, default=32)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--new", type=int, default=96)
    a = ap.parse_args()
    import torch

    from medsynth.text.backends.base import GenParams
    from medsynth.text.backends.transformers import TransformersBackend
    from medsynth.text.models import load_model

    t0 = time.time()
    model, tok, info = load_model(a.model)
    load_s = time.time() - t0
    tok.padding_side = "left"
    prompts = [f"Chest radiograph report {i}.\nINDICATION: cough for {i % 7 + 1} days\nFINDINGS:" for i in range(a.prompts)]
    res: dict = {"model": a.model, "dtype": info["dtype"], "batch": a.batch, "prompts": a.prompts, "max_new_tokens": a.new,
                 "cached_load_seconds": round(load_s, 2), "threads": torch.get_num_threads()}
    be = TransformersBackend(model=a.model, model_obj=model, tokenizer_obj=tok, model_sha256=info["model_sha256"])
    for mode, temp in (("greedy", 0.0), ("sampled_topk40_topp0.95", 0.8)):
        # bare loop: same prompts/batches, HF generate; sampling uses HF's own top_k/top_p warpers
        tokens = 0
        t0 = time.time()
        for i in range(0, len(prompts), a.batch):
            enc = tok(prompts[i : i + a.batch], return_tensors="pt", padding=True)
            torch.manual_seed(i)
            kw = dict(do_sample=True, top_k=40, top_p=0.95, temperature=temp) if temp else dict(do_sample=False)
            with torch.inference_mode():
                out = model.generate(**enc, max_new_tokens=a.new, pad_token_id=tok.pad_token_id, **kw)
            tokens += int((out[:, enc["input_ids"].shape[1]:] != tok.pad_token_id).sum())
        bare = tokens / (time.time() - t0)
        # medsynth backend (no stop strings so both produce the same number of tokens)
        t0 = time.time()
        comps = be.generate(prompts, GenParams(max_new_tokens=a.new, temperature=temp, top_k=40, top_p=0.95, batch_size=a.batch, seed=0))
        ms_tokens = sum(c.completion_tokens for c in comps)
        ms = ms_tokens / (time.time() - t0)
        res[mode] = {"bare_tokens_per_s": round(bare, 1), "medsynth_tokens_per_s": round(ms, 1), "ratio": round(ms / bare, 3),
                     "note": "both count generated non-pad tokens"}
    out = ROOT / "benchmarks/results/backend.json"
    save(out, res)
    print(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
