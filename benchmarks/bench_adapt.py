"""Parameter-efficient adaptation of Gemma 3 270M on scrubbed IU seed reports: held-out perplexity (base vs adapted),
canary exposure (LoRA vs DP-LoRA vs base), optional valid-record yield of the generate step with each adapter.

Protocol:
- real data: IU chest X-ray reports (the `iu_xray` step: hashed splits, 12 most frequent labels + normal).
- training documents: ``--seeds`` reports sampled (seeded, stratified by the `select` step) from the TRAIN split,
  scrubbed (surrogate mode), rendered "Findings list: <labels>\\n<report>", plus 8 canaries (6-digit secrets,
  |R| = 10^6) inserted 1, 4 or 16 times.
- perplexity: ``--heldout`` reports of the VALIDATION split (never trained on), same template, token-level
  exp(ΣNLL/Σtokens); also on the training seeds (memorisation gap).
- exposure: the canary_exposure audit (200 uniform candidates per canary, skew-normal extrapolation).
- yield (``--generate N``): the generate step (its default strategies) with the base model and with each adapter,
  N records asked; yield = valid records / prompts attempted.
The machine is shared (2 cores, other jobs): times are indicative, ratios are measured in the same run.

Usage: nice -n 10 python benchmarks/bench_adapt.py [--methods lora,lora_dp,prefix,prompt_tuning] [--generate 40]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from harness import ROOT, save as save_result  # noqa: E402  (path setup, machine capture, result writing)

OUT = ROOT / "benchmarks/results/adapt.json"


def _run_step(step_type: str, cfg: dict, datasets: dict, inputs: list[str], tmp: Path, name: str):
    from medsynth.data.io import read_records
    from medsynth.recipe.engine import make_test_context
    from medsynth.registry import STEPS

    cls = STEPS.get(step_type)
    st = cls(cls.Config.model_validate({"type": step_type, "name": name, **cfg}))
    ctx = make_test_context(tmp / name, datasets, inputs=inputs, step=st, name=name, seed=13)
    st.run(ctx)
    return read_records(ctx.step_dir / f"{name}.jsonl"), ctx


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--methods", default="lora,lora_dp")
    ap.add_argument("--seeds", type=int, default=48)
    ap.add_argument("--heldout", type=int, default=100)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--epsilon", "--dp-epsilon", dest="dp_epsilon", type=float, default=8.0)
    ap.add_argument("--generate", type=int, default=0, help="records asked per model for the yield comparison (0 = skip)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--canaries", type=int, default=8)
    ap.add_argument("--repeats", default="1,4,16")
    ap.add_argument("--out", default=str(OUT), help="results JSON (merged into if it exists)")
    ap.add_argument("--adapters", default="", help="name=folder,... : skip training, compare the yield of these adapters")
    a = ap.parse_args()
    out_path = Path(a.out)
    import torch

    torch.set_num_threads(a.threads)
    from medsynth.audit.canary import CanaryPolicy, canary_exposures
    from medsynth.ledger import BudgetLedger
    from medsynth.steps.adapt import AdaptConfig, run_adaptation
    from medsynth.text.models import load_model

    res: dict = json.loads(out_path.read_text()) if out_path.exists() else {}
    res.update({"protocol": __doc__.split("Usage:")[0].strip(), "seeds": a.seeds, "heldout": a.heldout, "epochs": a.epochs,
                "threads": a.threads, "machine": "2 shared CPU cores (other engineers' jobs running); bf16 where the CPU supports it"})
    res.setdefault("conditions", {})
    tmp = Path(tempfile.mkdtemp(prefix="bench_adapt_"))
    corpus, _ = _run_step("iu_xray", {"label_top_k": 12}, {}, [], tmp, "corpus")
    private = [r for r in corpus if r.meta.get("split") == "train"]
    holdout = [r for r in corpus if r.meta.get("split") == "validation"]
    seeds_raw, _ = _run_step("select", {"sample": a.seeds, "min_per_label": 1}, {"private": private}, ["private"], tmp, "seeds_raw")
    seeds, _ = _run_step("scrub", {"mode": "surrogate"}, {"seeds_raw": seeds_raw}, ["seeds_raw"], tmp, "seeds")
    res["n_seeds"], res["n_holdout_pool"] = len(seeds), len(holdout)
    canary_cfg = {"n": a.canaries, "repeats": [int(x) for x in a.repeats.split(",")], "digits": 6}
    res["canaries"] = canary_cfg
    pol = CanaryPolicy()

    def save() -> None:
        save_result(out_path, res, default=str)

    adapters: dict[str, str] = dict(kv.split("=", 1) for kv in a.adapters.split(",") if "=" in kv)
    for m in ([] if adapters else [x.strip() for x in a.methods.split(",") if x.strip()]):
        method = {"type": "lora", "r": 8, "alpha": 16} if m.startswith("lora") else {"type": m, "num_virtual_tokens": 16}
        cfg = {"type": "adapt", "model": "gemma3-270m", "method": method, "canaries": canary_cfg, "holdout": "holdout",
               "holdout_n": a.heldout, "train": {"epochs": a.epochs, "batch_size": 8, "micro_batch_size": 4,
                                                  "learning_rate": a.lr if m.startswith("lora") else 3e-2, "max_length": 256}}
        ledger = budget = None
        if m.endswith("_dp"):
            cfg["dp"] = {"epsilon": a.dp_epsilon, "delta": 1e-4, "max_grad_norm": 1.0}
            ledger = BudgetLedger(tmp / f"budget-{m}.sqlite")
            budget = "bench"
            ledger.create(budget, epsilon=a.dp_epsilon + 1, delta=1e-3)
        c = AdaptConfig.model_validate(cfg)
        t0 = time.time()
        s = run_adaptation(seeds, c, tmp / m, seed=13, holdout=holdout, ledger=ledger, budget=budget, step="adapt")
        model = s.pop("_model")
        cans = s.pop("_canary_records")
        if c.method.type == "lora":
            model = model.merge_and_unload()
        from transformers import AutoTokenizer

        from medsynth.text.models import resolve_model_dir

        tok = AutoTokenizer.from_pretrained(str(resolve_model_dir("gemma3-270m")))
        t1 = time.time()
        rows = canary_exposures(model, tok, cans, pol, seed=13)
        expo_s = time.time() - t1
        if "base_exposure" not in res:
            base, btok, _ = load_model("gemma3-270m")
            res["base_exposure"] = canary_exposures(base, btok, cans, pol, seed=13)
            del base
        adapters[m] = s["adapter_path"]
        res["conditions"][m] = {
            "method": c.method.type, "dp": s.get("dp"), "trainable_params": s["trainable_params"], "steps": s["steps"],
            "train_seconds": s["train_seconds"], "wall_seconds": round(time.time() - t0, 1), "exposure_seconds": round(expo_s, 1),
            "heldout_ppl_base": round(s["holdout_base"]["perplexity"], 3), "heldout_ppl_adapted": round(s["holdout_adapted"]["perplexity"], 3),
            "train_ppl_base": round(s["train_base"]["perplexity"], 3), "train_ppl_adapted": round(s["train_adapted"]["perplexity"], 3),
            "heldout_docs": s["holdout_base"]["documents"], "final_loss": s["final_loss"],
            "canary_exposure": rows, "max_exposure": max(r["exposure"] for r in rows),
            "mean_exposure_by_repeats": {str(k): round(sum(r["exposure"] for r in rows if r["repeats"] == k) / max(1, sum(1 for r in rows if r["repeats"] == k)), 3)
                                         for k in sorted({r["repeats"] for r in rows})},
            "threshold": round(__import__("math").log2(len(rows) / pol.alpha), 3),
        }
        del model
        save()
        print(json.dumps({m: {k: v for k, v in res["conditions"][m].items() if k != "canary_exposure"}}, indent=1, default=str), flush=True)
    if a.generate:
        res.setdefault("yield", {})
        for m in ["base", *adapters]:
            cfg = {"model": "gemma3-270m", "n": a.generate, "batch_size": 8, "max_new_tokens": 110}
            if m != "base":
                cfg["adapter"] = adapters[m]
            t0 = time.time()
            _recs, ctx = _run_step("generate", cfg, {"seeds": seeds}, ["seeds"], tmp, f"gen_{m}")
            figs = {f["name"]: f["value"] for f in ctx.figures}
            res["yield"][m] = {"yield": figs.get("yield"), "records_generated": figs.get("records_generated"),
                               "seconds": round(time.time() - t0, 1), **{k: v for k, v in figs.items() if k.startswith(("label_", "rejected", "conditioned"))}}
            save()
            print(m, res["yield"][m], flush=True)
    save()


if __name__ == "__main__":
    main()
