"""Imaging benchmark: conditioning accuracy, modality imputation vs baselines, memorization audit, CPU throughput.

    nice -n 10 .venv/bin/python benchmarks/bench_imaging.py                 # every part (≈ 1.5–3 h on a shared 2-core box)
    nice -n 10 .venv/bin/python benchmarks/bench_imaging.py --part conditioning --seed 7

Data: procedural phantoms (medsynth.imaging.phantom; never patients) with disjoint index ranges per split —
train 0–999, validation 1000–1199, test 1200–1599 — drawn with ``--seed``; and the real MNI152 template slices
(T1 / GM / WM, nilearn) split by blocks of contiguous slices. Hyper-parameters (guidance scale) are chosen on the
validation split; every reported figure is on the test split or on fresh samples. Results are merged into
benchmarks/results/imaging.json (one key per part) with how each figure was measured.

Timing: training uses ``--threads`` (default 2) CPU threads; wall-clock seconds depend on how loaded the machine
is, so CPU-seconds are reported too, and ratios (LDM vs U-Net regression) are measured in the same run.
"""

from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np

from harness import ROOT, save  # noqa: E402  (path setup, machine capture, result writing)
RESULTS = ROOT / "benchmarks" / "results" / "imaging.json"
WORK = ROOT / "benchmarks" / "work"
SPLITS = {"train": (0, 1000), "validation": (1000, 200), "test": (1200, 400)}


def _save(part: str, data: dict) -> None:
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    allr = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    allr[part] = data
    allr.pop("_environment", None)  # older files: the machine block is now harness.save's _machine
    save(RESULTS, allr, default=float)
    print(f"[saved {part} → {RESULTS}]", flush=True)


def _phantoms(seed: int, size: int = 64) -> dict:
    from medsynth.imaging.phantom import PhantomGenerator

    g = PhantomGenerator(size=size, seed=seed)
    out = {}
    for name, (start, n) in SPLITS.items():
        cs = g.cases(n, start=start)
        out[name] = {"labels": [c.labels for c in cs], **{m: np.stack([c.images[m] for c in cs]) for m in ("standard", "soft_tissue", "bone")}}
    return out


def _tag(args: argparse.Namespace) -> str:
    """Work-file suffix: preset and size (a saved generator is reused by --reuse-generator)."""
    return f"_{args.preset}_{args.size}"


def _cfg(args: argparse.Namespace, unet_over: dict | None = None):
    """The ``--preset`` (default cpu), with the step/batch overrides given on the command line (a smaller honest configuration
    when the machine's time is short; the figures record which configuration was run)."""
    from medsynth.imaging.pipelines import LDMConfig

    vae, unet = dict(json.loads(args.vae_json or "{}")), {**(unet_over or {}), **json.loads(args.unet_json or "{}")}
    if args.vae_steps:
        vae["steps"] = args.vae_steps
    if args.vae_batch:
        vae["batch_size"] = args.vae_batch
    if args.unet_steps:
        unet["steps"] = args.unet_steps
    if args.unet_batch:
        unet["batch_size"] = args.unet_batch
    if args.quick:
        vae["steps"], unet["steps"] = 100, 100
    return LDMConfig.from_preset(args.preset, size=args.size, vae=vae, unet=unet)


def part_conditioning(args: argparse.Namespace) -> dict:
    import torch

    from medsynth.imaging.metrics import calibrate_thresholds, condition_accuracy, feature_distance, fit_feature_net, pairwise_diversity, ssim
    from medsynth.imaging.models import SamplerConfig
    from medsynth.imaging.pipelines import LDMGenerator
    from medsynth.imaging.phantom import FINDINGS
    from medsynth.imaging.train import Runtime

    torch.set_num_threads(args.threads)
    d = _phantoms(args.seed, args.size)
    tr, va, te = d["train"], d["validation"], d["test"]
    cfg = _cfg(args)
    bundle = WORK / f"imaging_generator{_tag(args)}"
    if args.reuse_generator:
        # the generator trained by an earlier run of this part (same seed/config); its training figures are kept
        gen = LDMGenerator.load(bundle)
        if gen.meta["config"]["unet"]["steps"] != cfg.unet.steps or gen.meta["size"] != cfg.size:
            raise SystemExit("--reuse-generator: the saved generator was trained with another configuration")
        prev = json.loads(RESULTS.read_text())[args.key or "conditioning"]["training"]
        train_wall, train_cpu = prev["wall_seconds"], prev["cpu_seconds"]
    else:
        t0, c0 = time.time(), time.process_time()
        gen = LDMGenerator.fit(tr["standard"], tr["labels"], config=cfg, labels=list(FINDINGS), seed=args.seed, runtime=Runtime("cpu"))
        train_wall, train_cpu = time.time() - t0, time.process_time() - c0
        gen.save(bundle)
    rec = float(np.mean(ssim(gen.reconstruct(te["standard"][:200]), te["standard"][:200])))
    print(f"trained in {train_wall:.0f}s wall / {train_cpu:.0f} CPU-s; VAE recon SSIM {rec:.4f}", flush=True)

    clf = fit_feature_net(tr["standard"], tr["labels"], list(FINDINGS), steps=args.classifier_steps, seed=args.seed)
    calibrate_thresholds(clf, va["standard"], va["labels"])
    acc_real = condition_accuracy(clf, te["standard"], te["labels"])

    conds_cycle = [[f] for f in FINDINGS] + [[]]
    # guidance scale chosen on validation: fresh samples (seed+100) scored by the classifier calibrated on validation
    sweep = {}
    for w in args.guidance:
        conds = [conds_cycle[i % len(conds_cycle)] for i in range(args.n_val_samples)]
        imgs = gen.generate(conds, sampler=SamplerConfig(steps=args.sample_steps, guidance_scale=w), seed=args.seed + 100)
        a = condition_accuracy(clf, imgs, conds)
        sweep[str(w)] = {"recognised": a["recognised"], "absent_ok": a["absent_ok"], "balanced": 0.5 * (a["recognised"] + a["absent_ok"])}
        print("guidance", w, sweep[str(w)], flush=True)
    best_w = float(max(sweep, key=lambda k: sweep[k]["balanced"]))

    conds = [conds_cycle[i % len(conds_cycle)] for i in range(args.n_samples)]
    s = SamplerConfig(steps=args.sample_steps, guidance_scale=best_w)
    t1, c1 = time.time(), time.process_time()
    imgs = gen.generate(conds, sampler=s, seed=args.seed + 1000)
    samp_wall, samp_cpu = (time.time() - t1) / len(conds), (time.process_time() - c1) / len(conds)
    acc_gen = condition_accuracy(clf, imgs, conds)
    # multi-label requests drawn from the training prior
    rng = np.random.default_rng(args.seed)
    prior = [tr["labels"][i] for i in rng.integers(0, len(tr["labels"]), args.n_samples)]
    imgs_prior = gen.generate(prior, sampler=s, seed=args.seed + 2000)
    acc_prior = condition_accuracy(clf, imgs_prior, prior)
    acc_real_single = acc_real
    n = min(len(imgs_prior), len(te["standard"]))
    fd_gen = feature_distance(clf, imgs_prior[:n], te["standard"][:n])
    fd_floor = feature_distance(clf, tr["standard"][:n], te["standard"][:n])
    np.save(WORK / f"imaging_generated{_tag(args)}.npy", np.concatenate([imgs, imgs_prior]).astype(np.float16))
    (WORK / f"imaging_generated_labels{_tag(args)}.json").write_text(json.dumps(conds + prior))
    ti = gen.meta["training"]
    out = {
        "threads": args.threads, "seed": args.seed, "preset": args.preset, "size": args.size,
        "data": f"phantom standard radiographs {args.size}×{args.size}: train 1000 / validation 200 / test 400 (disjoint indices)",
        "training": {"wall_seconds": round(train_wall, 1), "cpu_seconds": round(train_cpu, 1),
                     "vae": {k: ti["vae"][k] for k in ("steps", "images_per_second", "seconds", "cpu_seconds")},
                     "unet": {k: ti["unet"][k] for k in ("steps", "images_per_second", "seconds", "cpu_seconds")},
                     "how": f"LDMGenerator.fit, preset {args.preset}, torch threads {args.threads}, nice 10 on a shared machine; VAE images/s count crops of {cfg.vae.crop} px for {1 - cfg.vae.full_size_fraction:.0%} of steps"},
        "config": {"vae": cfg.vae.model_dump(), "unet": cfg.unet.model_dump()},
        "vae_reconstruction_ssim_test": round(rec, 4),
        "sampling_seconds_per_image": {"wall": round(samp_wall, 4), "cpu": round(samp_cpu, 4),
                                       "how": f"DDIM {args.sample_steps} steps, classifier-free guidance (2 UNet passes per step), batch 32"},
        "guidance_sweep_validation": sweep, "guidance_scale": best_w,
        "classifier": {"how": f"FeatureNet trained on the 1000 real train images ({args.classifier_steps} steps), thresholds calibrated on validation"},
        "real_test": {"recognised": acc_real_single["recognised"], "absent_ok": acc_real_single["absent_ok"], "exact": acc_real_single["exact"],
                      "per_label": acc_real_single["per_label"]},
        "generated_single_finding": {"n": len(conds), "recognised": acc_gen["recognised"], "absent_ok": acc_gen["absent_ok"], "exact": acc_gen["exact"],
                                     "per_label": acc_gen["per_label"],
                                     "how": "each finding alone and 'no finding', in turn; fresh seed; recognised = requested finding detected"},
        "generated_prior": {"n": len(prior), "recognised": acc_prior["recognised"], "absent_ok": acc_prior["absent_ok"], "exact": acc_prior["exact"],
                            "how": "label sets drawn from the training prior (multi-label)"},
        "fd": {"generated_vs_test": round(fd_gen, 4), "train_vs_test": round(fd_floor, 4), "n": n,
               "how": "Fréchet distance of the classifier's pooled features (in-project network, no hub weights)"},
        "diversity": {"generated": round(pairwise_diversity(imgs_prior), 4), "real_test": round(pairwise_diversity(te["standard"]), 4),
                      "how": "mean 1 − SSIM over 200 random pairs"},
    }
    return out


def _by_name(stack: np.ndarray) -> dict:
    """[N, S, H, W] source stack → the imputer's ``{"s0": [N, H, W], ...}``."""
    return {f"s{i}": stack[:, i] for i in range(stack.shape[1])}


def part_impute(args: argparse.Namespace, dataset: str) -> dict:
    import torch

    from medsynth.imaging.baselines import train_regression_unet
    from medsynth.imaging.metrics import feature_distance, fit_feature_net, mae, psnr, ssim
    from medsynth.imaging.models import SamplerConfig
    from medsynth.imaging.pipelines import MeanModelConfig, ModalityImputer
    from medsynth.imaging.train import Runtime

    torch.set_num_threads(args.threads)
    if dataset == "phantom":
        d = _phantoms(args.seed, args.size)
        src_name, tgt_name = "standard", "soft_tissue"
        tr = {"src": d["train"][src_name][:, None], "tgt": d["train"][tgt_name], "labels": d["train"]["labels"]}
        te = {"src": d["test"][src_name][:200, None], "tgt": d["test"][tgt_name][:200]}
        va = {"src": d["validation"][src_name][:200, None], "tgt": d["validation"][tgt_name][:200]}
        unet_over = {}
        desc = "phantom dual-energy pairs: standard radiograph → soft-tissue image (bone suppression); train 1000, test 200"
    else:
        from medsynth.imaging.mni import mni152_slices

        sl = mni152_slices(size=args.size, axis="axial", lo=0.2, hi=0.85)
        blocks = np.array([k // 8 for k in range(len(sl))])
        is_test = (blocks % 5) == 2
        src_name, tgt_name = ("gm+wm", "t1") if dataset == "mni_t1" else ("t1", "gm")
        def stack(mask, key):
            return np.stack([s[1][key] for s, m in zip(sl, mask, strict=True) if m])
        if dataset == "mni_t1":
            tr = {"src": np.stack([stack(~is_test, "gm"), stack(~is_test, "wm")], 1), "tgt": stack(~is_test, "t1"), "labels": None}
            te = {"src": np.stack([stack(is_test, "gm"), stack(is_test, "wm")], 1), "tgt": stack(is_test, "t1")}
        else:
            tr = {"src": stack(~is_test, "t1")[:, None], "tgt": stack(~is_test, "gm"), "labels": None}
            te = {"src": stack(is_test, "t1")[:, None], "tgt": stack(is_test, "gm")}
        va = None  # one brain: every slice block is needed for training or test; the mode is chosen on the phantom's validation split
        unet_over = {"steps": 1500}
        desc = f"MNI152 2009 template axial slices: {tgt_name} from {src_name}; {len(tr['tgt'])} train / {len(te['tgt'])} test slices (blocks of 8 contiguous slices, every 5th block held out)"
    cfg = _cfg(args, unet_over)
    srcs = _by_name(tr["src"])
    t0, c0 = time.time(), time.process_time()
    mean_model = MeanModelConfig(steps=cfg.unet.steps, folds=args.mean_folds) if args.impute_mode == "residual" else None
    imp = ModalityImputer.fit(srcs, tr["tgt"], config=cfg, target_name=tgt_name, seed=args.seed, runtime=Runtime("cpu"), mean_model=mean_model)
    ldm_wall, ldm_cpu = time.time() - t0, time.process_time() - c0
    print(f"[{dataset}] imputer trained {ldm_wall:.0f}s wall", flush=True)
    t0, c0 = time.time(), time.process_time()
    reg, rinfo = train_regression_unet(tr["src"], tr["tgt"], steps=cfg.unet.steps, batch_size=32, seed=args.seed)
    reg_wall, reg_cpu = time.time() - t0, time.process_time() - c0
    print(f"[{dataset}] U-Net regression trained {reg_wall:.0f}s wall", flush=True)
    K = args.n_impute_samples
    s = SamplerConfig(steps=args.sample_steps, guidance_scale=1.0)
    fnet = fit_feature_net(tr["tgt"], tr["labels"], None, steps=args.classifier_steps, seed=args.seed, rotation=True)

    def evaluate(split: dict, name: str, reference: np.ndarray | None = None) -> tuple[dict, np.ndarray, float]:
        """Metrics of every method on ``split``; ``fd`` against the split's own targets (paired: the same cases), and
        ``fd_unpaired`` against ``reference``, real targets of other cases (how far the outputs are from the real
        distribution, without credit for matching each case)."""
        src = _by_name(split["src"])
        t1 = time.time()
        smp = imp.impute(src, n_samples=K, sampler=s, seed=args.seed + 5)
        wall = (time.time() - t1) / (len(split["tgt"]) * K)
        preds = {"ldm_mean_of_%d" % K: smp.mean(1), "ldm_single_sample": smp[:, 0], "unet_regression": reg.predict(split["src"]),
                 "copy_input": split["src"][:, 0], "mean_image": np.repeat(tr["tgt"].mean(0, keepdims=True), len(split["tgt"]), 0)}
        if imp.mode == "residual":
            preds["ldm_regression_mean"] = imp.predict_mean(src)
        rows = {}
        for k, P in preds.items():
            rows[k] = {"ssim": float(np.mean(ssim(P, split["tgt"]))), "psnr": float(np.mean(psnr(P, split["tgt"]))),
                       "mae": float(np.mean(mae(P, split["tgt"]))), "fd": feature_distance(fnet, P, split["tgt"])}
            if reference is not None:
                rows[k]["fd_unpaired"] = feature_distance(fnet, P[: len(reference)], reference[: len(P)])
            print(dataset, name, k, {a: round(b, 4) for a, b in rows[k].items()}, flush=True)
        np.savez_compressed(WORK / f"impute_{dataset}_{imp.mode}{_tag(args)}_{name}.npz", samples=smp.astype(np.float16),
                            **{k: v.astype(np.float16) for k, v in preds.items()})
        return rows, smp, wall

    rows_val = evaluate(va, "validation")[0] if va is not None else None
    # unpaired reference for test: real targets of other cases (phantom: the validation split; MNI: training slices)
    ref = va["tgt"] if va is not None else tr["tgt"][: len(te["tgt"])]
    rows, smp, samp_wall = evaluate(te, "test", reference=ref)
    fd_real_unpaired = feature_distance(fnet, te["tgt"][: len(ref)], ref[: len(te["tgt"])])
    recon = imp.reconstruct(_by_name(te["src"]), te["tgt"])  # residual mode: the mean plus the round trip of the true residual
    rec = float(np.mean(ssim(recon, te["tgt"])))
    # the LDM's floor: its samples pass through the VAE decoder, so FD of the real targets' own reconstructions
    rec_fd = feature_distance(fnet, recon, te["tgt"])
    real_fd = None
    if len(tr["tgt"]) >= len(te["tgt"]):
        real_fd = feature_distance(fnet, tr["tgt"][: len(te["tgt"])], te["tgt"])
    std = smp.std(1).mean(axis=(1, 2))
    err = np.abs(smp.mean(1) - te["tgt"]).mean(axis=(1, 2))
    from scipy.stats import spearmanr

    return {
        "threads": args.threads, "seed": args.seed, "data": desc, "mode": imp.mode,
        "mean_model": imp.meta.get("mean_model"),
        "metrics": rows, "metrics_validation": rows_val, "fd_real_train_vs_test": real_fd,
        "fd_unpaired_real_floor": fd_real_unpaired,
        "fd_unpaired_how": ("fd_unpaired: FD of each method's test outputs against real targets of OTHER cases "
                            + ("(the 200 validation targets)" if va is not None else "(the first training slices, as many as test slices)")
                            + "; fd_unpaired_real_floor: the real test targets against the same reference. 'fd' is paired (the same test cases)"),
        "how": (f"MONAI SSIM/PSNR/MAE at {args.size}px on held-out pairs ('metrics': test, 'metrics_validation': validation split); "
                f"LDM = ModalityImputer mode {imp.mode} (preset {args.preset}, {cfg.unet.steps} UNet steps"
                + (f"; regression mean: MONAI UNet, {cfg.unet.steps} steps, {args.mean_folds}-fold cross-fitted residuals" if imp.mode == "residual" else "")
                + f"), {K} samples per case, "
                f"DDIM {args.sample_steps} steps; U-Net regression = MONAI UNet (16,32,64,128), batch norm, L1, same pairs, {cfg.unet.steps} steps of batch 32; "
                "FD = Fréchet distance of a feature network trained on the real training targets (labels if any + rotation task)"),
        "config": {"vae": cfg.vae.model_dump(), "unet": cfg.unet.model_dump()},
        "vae_reconstruction_ssim_test": round(rec, 4),
        "vae_reconstruction_fd_test": round(rec_fd, 4),
        "uncertainty_error_spearman": float(spearmanr(std, err).statistic),
        "training": {"ldm_wall_seconds": round(ldm_wall, 1), "ldm_cpu_seconds": round(ldm_cpu, 1), "unet_regression_wall_seconds": round(reg_wall, 1),
                     "unet_regression_cpu_seconds": round(reg_cpu, 1), "ldm_unet_images_per_second": imp.meta["training"]["unet"]["images_per_second"],
                     "unet_regression_images_per_second": rinfo["images_per_second"]},
        "sampling_seconds_per_sample_wall": round(samp_wall, 4),
        "goals": {"beats_copy_and_mean_on_ssim_and_mae": bool(all(rows["ldm_mean_of_%d" % K]["ssim"] > rows[b]["ssim"] and rows["ldm_mean_of_%d" % K]["mae"] < rows[b]["mae"]
                                                                for b in ("copy_input", "mean_image"))),
                  "within_0.03_ssim_of_unet": bool(rows["unet_regression"]["ssim"] - rows["ldm_mean_of_%d" % K]["ssim"] <= 0.03),
                  "samples_lower_fd_than_unet": bool(rows["ldm_single_sample"]["fd"] < rows["unet_regression"]["fd"]),
                  "samples_lower_unpaired_fd_than_unet": bool(rows["ldm_single_sample"]["fd_unpaired"] < rows["unet_regression"]["fd_unpaired"])},
    }


def part_memorization(args: argparse.Namespace) -> dict:
    import torch

    from medsynth.audit.image_copy import ImageCopyAudit, ImageCopyPolicy
    from medsynth.data.records import Record
    from medsynth.imaging.io import save_png16

    torch.set_num_threads(args.threads)
    gen_path = WORK / f"imaging_generated{_tag(args)}.npy"
    if not gen_path.exists():
        raise SystemExit("run --part conditioning first (it saves the generated images)")
    G = np.load(gen_path).astype(np.float32)
    d = _phantoms(args.seed, args.size)
    work = WORK / "imaging_audit"
    import shutil

    if work.exists():
        shutil.rmtree(work)

    def recs(arr: np.ndarray, prefix: str, labels: list | None = None) -> list[Record]:
        out = []
        for i, a in enumerate(arr):
            p = save_png16(work / prefix / f"{i:05d}.png", a)
            out.append(Record(id=f"{prefix}-{i:05d}", kind="image", image_path=str(p), labels=(labels[i] if labels else []), meta={"demo": "phantom"}))
        return out

    private = recs(d["train"]["standard"], "private", d["train"]["labels"])
    holdout = recs(d["validation"]["standard"], "holdout", d["validation"]["labels"])
    synthetic = recs(G, "synthetic")
    pol = ImageCopyPolicy(image_size=args.size)
    t0 = time.time()
    res = ImageCopyAudit(pol).run(synthetic, private, holdout, seed=args.seed)
    audit_s = time.time() - t0
    fig = {f["name"]: f["value"] for f in res.figures}
    # planted copies: an exact copy, a noisy/re-windowed copy, a 3-pixel-shifted copy of training images
    rng = np.random.default_rng(args.seed)
    idx = rng.choice(len(d["train"]["standard"]), 3, replace=False)
    src = d["train"]["standard"][idx]
    planted = np.stack([src[0], np.clip(src[1] * 1.05 + rng.normal(0, 0.01, src[1].shape), 0, 1), np.roll(src[2], (3, -3), axis=(0, 1))])
    mixed = synthetic[:97] + recs(planted, "planted")
    res2 = ImageCopyAudit(pol).run(mixed, private, holdout, seed=args.seed)
    flagged2 = {f.record_id: f.reason for f in res2.findings}
    return {
        "threads": args.threads, "seed": args.seed,
        "policy": pol.model_dump(),
        "generated": {"n": len(synthetic), "flagged": len({f.record_id for f in res.findings}), "ssim_threshold": fig.get("image_copy.ssim_threshold"),
                      "nearest_ssim_median": fig.get("image_copy.nearest_ssim_median"), "nearest_ssim_max": fig.get("image_copy.nearest_ssim_max"),
                      "holdout_nearest_ssim_median": fig.get("image_copy.holdout_nearest_ssim_median"), "verdict": res.verdict,
                      "audit_seconds": round(audit_s, 1)},
        "planted": {"kinds": ["exact copy", "gain 1.05 + noise σ 0.01", "shifted 3 px"],
                    "flagged": {k: flagged2.get(f"planted-{i:05d}") for i, k in enumerate(["exact", "noisy", "shifted"])},
                    "other_flagged": sorted(k for k in flagged2 if not k.startswith("planted")), "verdict": res2.verdict},
        "how": (f"image_copy audit with the default policy (image_size {args.size}): {len(synthetic)} generated images (conditioning part) vs the 1000 training images, "
                "holdout = the 200 validation images; planted run = 97 generated + 3 planted copies of random training images"),
    }


def part_preset_timing(args: argparse.Namespace) -> dict:
    """Training time of the ``cpu`` preset at ``--size`` (default 64 px), extrapolated from a short fit of the same
    networks and batch sizes (``--timing-steps`` optimizer steps per stage): per-step cost is flat after warm-up, so
    preset seconds = preset steps x measured seconds per step. The extrapolation, not a full run, is what is reported."""
    import torch

    from medsynth.imaging.pipelines import LDMConfig, LDMGenerator
    from medsynth.imaging.phantom import FINDINGS
    from medsynth.imaging.train import Runtime

    torch.set_num_threads(args.threads)
    full = LDMConfig.from_preset(args.preset, size=args.size)
    short = LDMConfig.from_preset(args.preset, size=args.size, vae={"steps": args.timing_steps}, unet={"steps": args.timing_steps, "warmup_steps": 1})
    tr = _phantoms(args.seed, args.size)["train"]
    t0, c0 = time.time(), time.process_time()
    gen = LDMGenerator.fit(tr["standard"], tr["labels"], config=short, labels=list(FINDINGS), seed=args.seed, runtime=Runtime("cpu"))
    wall, cpu = time.time() - t0, time.process_time() - c0
    ti = gen.meta["training"]
    out = {"preset": args.preset, "threads": args.threads, "size": args.size, "timing_steps": args.timing_steps, "short_fit_wall_seconds": round(wall, 1),
           "short_fit_cpu_seconds": round(cpu, 1), "load_average_after": os.getloadavg()[0]}
    total = 0.0
    for stage, cfg in (("vae", full.vae), ("unet", full.unet)):
        per_step = ti[stage]["seconds"] / ti[stage]["steps"]
        out[stage] = {"preset_steps": cfg.steps, "batch_size": cfg.batch_size, "seconds_per_step": round(per_step, 4),
                      "images_per_second": ti[stage]["images_per_second"], "extrapolated_seconds": round(per_step * cfg.steps, 1)}
        total += per_step * cfg.steps
    out["extrapolated_preset_minutes"] = round(total / 60, 1)
    out["how"] = (f"LDMGenerator.fit on {len(tr['standard'])} phantoms at {args.size} px with the {args.preset} preset's networks and batches for "
                  f"{args.timing_steps} steps per stage, {args.threads} torch threads; preset time = preset steps x seconds per step")
    print(json.dumps(out), flush=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--part", choices=["conditioning", "impute_phantom", "impute_mni_t1", "impute_mni_gm", "memorization", "preset_timing", "all"], default="all")
    ap.add_argument("--seed", type=int, default=2024)
    ap.add_argument("--preset", default="cpu", help="model preset (medsynth.imaging.models.PRESETS) of the conditioning, imputation and timing parts")
    ap.add_argument("--key", default="", help="store the part's figures under this key instead of the part's name (e.g. a second preset)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--quick", action="store_true", help="a few steps only (checks the script, figures meaningless)")
    ap.add_argument("--classifier-steps", type=int, default=800)
    ap.add_argument("--sample-steps", type=int, default=50)
    ap.add_argument("--n-samples", type=int, default=300)
    ap.add_argument("--n-val-samples", type=int, default=120)
    ap.add_argument("--n-impute-samples", type=int, default=4)
    ap.add_argument("--impute-mode", choices=["palette", "residual"], default="palette", help="ModalityImputer mode of the impute parts")
    ap.add_argument("--mean-folds", type=int, default=2, help="residual mode: cross-fitting folds of the regression mean")
    ap.add_argument("--reuse-generator", action="store_true", help="conditioning: sample from the generator saved by an earlier run")
    ap.add_argument("--size", type=int, default=64, help="image size (phantoms, MNI slices, model)")
    ap.add_argument("--vae-steps", type=int, default=None, help="override the preset's VAE steps")
    ap.add_argument("--vae-batch", type=int, default=None)
    ap.add_argument("--unet-steps", type=int, default=None, help="override the preset's UNet steps")
    ap.add_argument("--unet-batch", type=int, default=None)
    ap.add_argument("--vae-json", default=None, help='further VAE overrides as JSON, e.g. \'{"block_out_channels": [32, 64]}\'')
    ap.add_argument("--unet-json", default=None, help="further UNet overrides as JSON")
    ap.add_argument("--guidance", type=float, nargs="+", default=[1.0, 2.0, 3.0])
    ap.add_argument("--timing-steps", type=int, default=40, help="preset_timing: optimizer steps per stage of the short fit")
    args = ap.parse_args()
    WORK.mkdir(parents=True, exist_ok=True)
    parts = ["conditioning", "memorization", "impute_phantom", "impute_mni_t1", "impute_mni_gm"] if args.part == "all" else [args.part]
    for p in parts:
        t0 = time.time()
        if p == "conditioning":
            r = part_conditioning(args)
        elif p == "memorization":
            r = part_memorization(args)
        elif p == "preset_timing":
            r = part_preset_timing(args)
        else:
            r = part_impute(args, {"impute_phantom": "phantom", "impute_mni_t1": "mni_t1", "impute_mni_gm": "mni_gm"}[p])
        r["part_wall_seconds"] = round(time.time() - t0, 1)
        if not args.quick:
            _save(args.key or p, r)
        else:
            print(json.dumps(r, indent=1, default=float)[:3000])


if __name__ == "__main__":
    main()
