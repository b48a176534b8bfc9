"""Generation throughput of the llamacpp backend (quantised GGUF, one prompt at a time) against the transformers
backend (de-quantised HF weights, batched) on the same prompts, token budget, thread count and machine, in the same
run. Both count generated tokens (llama.cpp's usage; transformers' non-pad tokens). Greedy and sampled
(top-k 40, top-p 0.95, T 0.8). The machine is shared: the ratio is the robust figure, absolute tokens/s are not.

Usage: nice -n 10 python benchmarks/bench_llamacpp.py [--model gemma3-270m] [--prompts 16] [--batch 8] [--new 96] [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import os
import time

from harness import ROOT, save  # noqa: E402  (path setup, machine capture, result writing)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="gemma3-270m")
    ap.add_argument("--prompts", type=int, default=16)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--new", type=int, default=96)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", str(a.threads))
    import torch

    torch.set_num_threads(a.threads)
    from medsynth.text.backends.base import GenParams
    from medsynth.text.backends.llamacpp import LlamaCppBackend
    from medsynth.text.backends.transformers import TransformersBackend

    prompts = [f"Chest radiograph report {i}.\nINDICATION: cough for {i % 7 + 1} days\nFINDINGS:" for i in range(a.prompts)]
    res: dict = {"model": a.model, "prompts": a.prompts, "batch": a.batch, "max_new_tokens": a.new, "threads": a.threads,
                 "machine": "2 shared CPU cores (other jobs running): compare the ratios"}
    t0 = time.time()
    lc = LlamaCppBackend(model=a.model, n_threads=a.threads)
    res["llamacpp_load_seconds"] = round(time.time() - t0, 2)
    res["llamacpp_gguf_sha256"] = lc.model_sha256
    t0 = time.time()
    tf = TransformersBackend(model=a.model)
    res["transformers_load_seconds"] = round(time.time() - t0, 2)
    res["transformers_dtype"] = tf.info.get("dtype")
    for mode, temp in (("greedy", 0.0), ("sampled_topk40_topp0.95", 0.8)):
        p = GenParams(max_new_tokens=a.new, temperature=temp, top_k=40, top_p=0.95, batch_size=a.batch, seed=0)
        row = {}
        for name, be in (("transformers", tf), ("llamacpp", lc)):
            t0 = time.time()
            comps = be.generate(prompts, p)
            dt = time.time() - t0
            toks = sum(c.completion_tokens for c in comps)
            row[name] = {"tokens": toks, "seconds": round(dt, 2), "tokens_per_s": round(toks / dt, 1),
                         "finished_by_length": sum(c.finish_reason == "length" for c in comps)}
        row["llamacpp_over_transformers"] = round(row["llamacpp"]["tokens_per_s"] / row["transformers"]["tokens_per_s"], 3)
        res[mode] = row
        print(mode, json.dumps(row), flush=True)
    lc.close()
    out = ROOT / "benchmarks/results/llamacpp.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    save(out, res)
    print(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
