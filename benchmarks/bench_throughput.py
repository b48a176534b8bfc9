"""Generation throughput of the quickstart's generate step against a bare ``model.generate`` loop, in the same run.

Three measurements, one process, the same machine and model (SmolLM2-135M-Instruct by default):

1. ``pipeline`` — the quickstart recipe (all steps; the figures are the generate step's) with ``n`` records,
   as shipped: runtime chosen by measurement, prefix sharing, split decoding, batch-shared few-shot and sentence
   examples, last batch sized to the records still needed.
2. ``pipeline_before`` — the same with those changes switched off (``prefix_sharing``/``split_decoding`` false,
   ``fewshot.shared: 0``, ``entity_first.shared_examples: 0``): the behaviour before issue 21, same seeds.
3. ``bare`` — the ceiling: ``model.generate`` over batches of 32 random-token prompts as long as the pipeline's mean
   prompt, decoding exactly the pipeline's mean tokens per request (``min_new_tokens``), with the same dtype/threads.

Figures: generated tokens/s and kept records/min of each, the pipeline/bare ratio, prompt tokens given vs encoded,
slot occupancy, and the quality figures of both pipeline runs (yield, label fidelity, planned-mention recall) so
faster is not bought with worse. Results: benchmarks/results/throughput.json.

Usage: python benchmarks/bench_throughput.py [--n 100] [--skip-before]   (≈ 25 min on 2 cores: before ≈ 16 min, after ≈ 7.5 min)
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from harness import ROOT, save  # noqa: E402  (path setup, machine capture, result writing)


def run_generate(n: int, before: bool, runs_root: Path) -> dict:
    from medsynth.recipe.engine import run_recipe

    sets = [f"steps.generate.n={n}"]
    if before:
        sets += ["steps.generate.backend_options.prefix_sharing=false", "steps.generate.backend_options.split_decoding=false",
                 'steps.generate.strategies=["prior", {"type": "entity_first", "shared_examples": 0}, {"type": "fewshot", "shared": 0}, "feedback", "verify"]']
    t0 = time.time()
    res = run_recipe(ROOT / "recipes/quickstart.yaml", overrides=sets, runs_root=runs_root, use_cache=False, show_progress=False)
    wall = time.time() - t0
    rep = json.loads((Path(res.run_dir) / "report.json").read_text())
    g = next(s for s in rep["steps"] if s.get("name") == "generate")
    figs = {f["name"]: f.get("value") for f in g["figures"]}
    tok = figs.get("generation_tokens") or {}
    secs = g.get("seconds") or wall
    return {"recipe_wall_seconds": round(wall, 1), "records": figs.get("records_generated"), "seconds": round(secs, 1), "generated_tokens": tok.get("generated_tokens"),
            "tokens_per_s": round((tok.get("generated_tokens") or 0) / secs, 2), "records_per_min": round(60 * (figs.get("records_generated") or 0) / secs, 2),
            "prompt_tokens": tok.get("prompt_tokens"), "prompt_tokens_encoded": tok.get("prompt_tokens_encoded"),
            "requests": (figs.get("sentence_requests") or 0) + (figs.get("records_generated") or 0),
            "slot_occupancy": tok.get("slot_occupancy"), "runtime": {k: (figs.get("generation_runtime") or {}).get(k) for k in ("dtype", "threads", "how")},
            "yield": figs.get("yield"), "label_fidelity": figs.get("label_fidelity"), "planned_mention_recall": figs.get("planned_mention_recall"),
            "sentence_rejections": figs.get("sentence_rejections"), "rejections": figs.get("rejections")}


def bare_loop(prompt_len: int, new_tokens: int, batches: int = 3, batch: int = 32) -> dict:
    import torch

    from medsynth.text.models import load_model

    model, tok, info = load_model("smollm2-135m-instruct")
    rt = info["runtime"]
    before = torch.get_num_threads()
    if rt.get("threads"):
        torch.set_num_threads(rt["threads"])
    g = torch.Generator().manual_seed(0)
    pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
    n_tok, t0 = 0, time.time()
    with torch.inference_mode():
        for b in range(batches):
            ids = torch.randint(100, 30000, (batch, prompt_len), generator=g)
            torch.manual_seed(b)
            out = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=new_tokens, min_new_tokens=new_tokens,
                                 do_sample=True, top_k=40, top_p=0.95, temperature=0.8, pad_token_id=pad)
            n_tok += int(out[:, prompt_len:].numel())
    secs = time.time() - t0
    torch.set_num_threads(before)
    return {"dtype": info["dtype"], "threads": rt.get("threads"), "batch": batch, "prompt_tokens": prompt_len, "new_tokens": new_tokens,
            "tokens_per_s": round(n_tok / secs, 2), "seconds": round(secs, 1)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=100)
    ap.add_argument("--skip-before", action="store_true")
    a = ap.parse_args()
    from medsynth.envcheck import set_offline_defaults

    set_offline_defaults()
    res: dict = {"n_records": a.n}
    with tempfile.TemporaryDirectory() as tmp:
        res["pipeline"] = run_generate(a.n, False, Path(tmp))
        if not a.skip_before:
            res["pipeline_before"] = run_generate(a.n, True, Path(tmp))
    p = res["pipeline"]
    prompt_len = round(p["prompt_tokens"] / max(p["requests"], 1))
    new_tokens = max(1, round(p["generated_tokens"] / max(p["requests"], 1)))
    res["bare"] = bare_loop(prompt_len, new_tokens)
    res["pipeline_over_bare"] = round(p["tokens_per_s"] / res["bare"]["tokens_per_s"], 3)
    if "pipeline_before" in res:
        b = res["pipeline_before"]
        res["before_over_bare"] = round(b["tokens_per_s"] / res["bare"]["tokens_per_s"], 3)
        res["speedup_records_per_min"] = round(p["records_per_min"] / max(b["records_per_min"], 1e-9), 2)
    out = ROOT / "benchmarks/results/throughput.json"
    save(out, res)
    print(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
