"""Imaging model steps (heavy imports stay inside ``run()``); the source steps (``phantom``, ``image_folder``,
``mni152``) are in :mod:`.imaging_sources`.

Models: ``ldm_train`` (VAE + label-conditioned UNet), ``ldm_sample`` (synthetic radiographs, PNG and synthetic
DICOM, optional evaluation), ``modality_impute`` (imputation of a missing modality by a conditional LDM — residual around a regression mean,
or Palette-style — with baselines).
Gate: ``image_audit`` (in :mod:`medsynth.steps.audit`: the ``image_copy`` audit through the one release gate).

Image records: ``Record(kind="image", image_path=<path relative to the run directory>, labels=[...])``; paired
modalities in ``meta.modalities`` (name → path). Files live in the writing step's folder; the step folder name is
part of each such step's cache key, so cached copies always land where their paths say.

Why over 500 lines: three model steps (train, sample, impute) with their evaluation options; the evaluation
metrics themselves are in :mod:`medsynth.imaging.metrics` and :mod:`medsynth.imaging.baselines`.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ..data.records import Provenance, Record
from ..exceptions import DataFormatError, RecipeError
from ..paths import find_step_dir
from ..recipe.step import Step, StepConfig, StepPlan, eval_object, register_step

from ._imaging_common import _rel, _StepFolderKey, modality_path, record_images

if TYPE_CHECKING:  # pragma: no cover
    from ..recipe.engine import StepContext

__all__ = ["LDMTrainStep", "LDMSampleStep", "ModalityImputeStep", "modality_path", "record_images"]

# ------------------------------------------------------------------------------------------------------------------
# helpers shared by the steps


# ------------------------------------------------------------------------------------------------------------------
# models


class _ModelOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")
    preset: Literal["cpu", "cpu_long", "tiny", "gpu"] = Field("cpu", description="network sizes and step counts (cpu: 64 px, the generator trains in ≈ 15 min (896 s measured) on 2 CPU threads; cpu_long: the earlier wider configuration, ≈ 41 min; tiny: tests; gpu: 128 px)")
    size: int | None = Field(None, ge=8, le=1024, description="image size (default: the preset's)")
    vae: dict[str, Any] = Field(default_factory=dict, description="overrides of the preset's VAE settings (see imaging/models.py VAEConfig)")
    unet: dict[str, Any] = Field(default_factory=dict, description="overrides of the preset's UNet settings (UNetConfig)")
    max_minutes: float | None = Field(None, gt=0, description="wall-clock budget for training (stops early and says so)")
    device: Literal["auto", "cpu", "cuda"] = "auto"
    mixed_precision: Literal["auto", "no", "fp16", "bf16"] = Field("auto", description="on CUDA only (through accelerate)")
    threads: int | None = Field(None, ge=1, description="CPU threads (torch.set_num_threads); default: torch's")

    def ldm_config(self) -> Any:
        from ..imaging.pipelines import LDMConfig

        return LDMConfig.from_preset(self.preset, self.size, self.vae, self.unet)

    @model_validator(mode="after")
    def _valid(self) -> _ModelOptions:
        from pydantic import ValidationError

        from ..imaging.models import UNetConfig, VAEConfig, preset

        p = preset(self.preset)
        built: dict[str, Any] = {}
        problems = []
        for part, cls, over in (("vae", VAEConfig, self.vae), ("unet", UNetConfig, self.unet)):
            try:
                built[part] = cls(**{**p[part], **over})
            except ValidationError as e:
                for er in e.errors():
                    loc = ".".join(str(x) for x in er["loc"])
                    allowed = ", ".join(sorted(cls.model_fields))
                    msg = er["msg"].removeprefix("Value error, ")
                    problems.append(f"{part}{'.' + loc if loc else ''}: {msg}" + (f" (allowed keys: {allowed})" if er["type"] == "extra_forbidden" else ""))
        if problems:
            raise ValueError("; ".join(problems))
        size = self.size or p["size"]
        ds = 2 ** (len(built["vae"].block_out_channels) - 1)
        if size % (ds * 2 ** (len(built["unet"].block_out_channels) - 1)):
            raise ValueError(f"size {size} must be divisible by the VAE downsampling × UNet downsampling")
        return self


class VAEEvalOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")
    real: str = Field(description="dataset of held-out real images (never trained on)")


class LDMTrainConfig(StepConfig, _ModelOptions):
    type: Literal["ldm_train"] = "ldm_train"
    modality: str | None = Field(None, description="which image of each record to model (a meta.modalities name; default image_path)")
    labels: list[str] | None = Field(None, description="finding labels to condition on (default: every label in the training set)")
    min_label_count: int = Field(5, ge=1, description="labels with fewer training images are not conditioned on (reported)")
    report_conditioning: bool = Field(False, description="also condition on MiniLM embeddings of record.text (cross-attention)")
    min_images: int = Field(16, ge=2, description="refuse to train on fewer images (a diffusion model of a handful of images memorizes them)")
    eval: VAEEvalOptions | None = Field(None, description="held-out real images: VAE reconstruction SSIM is reported on them")

    _eval = field_validator("eval", mode="before")(eval_object)


@register_step
class LDMTrainStep(_StepFolderKey, Step[LDMTrainConfig]):
    """Train the VAE and the label-conditioned UNet on the input image records; the bundle goes to ``model/``."""

    Config = LDMTrainConfig
    version = "1"

    def plan(self, input_sizes: dict[str, int | None]) -> StepPlan:
        c = self.config
        cfg = c.ldm_config()
        n = next(iter(input_sizes.values()), None)
        return StepPlan(records_in=n, records_out=n, notes=[f"VAE {cfg.vae.steps} steps + UNet {cfg.unet.steps} steps at {cfg.size}px"
                                                             + (f", at most {c.max_minutes} min" if c.max_minutes else "")])

    def run(self, ctx: StepContext) -> None:
        import numpy as np

        from ..imaging.pipelines import LDMGenerator
        from ..imaging.train import Runtime

        c = self.config
        recs = [r for r in ctx.input() if r.kind == "image"]
        if len(recs) < c.min_images:
            raise DataFormatError(f"step '{ctx.step_name}': {len(recs)} image record(s) to train on; at least {c.min_images} are needed "
                                  "(min_images). Add images, or lower min_images knowing a model of a few images memorizes them.")
        cfg = c.ldm_config()
        X = record_images(ctx, recs, cfg.size, c.modality)
        counts = Counter(lab for r in recs for lab in r.labels)
        labels = c.labels if c.labels is not None else sorted(counts)
        dropped = [lab for lab in labels if counts.get(lab, 0) < c.min_label_count]
        labels = [lab for lab in labels if lab not in dropped]
        if dropped:
            ctx.add_figure("labels_not_conditioned", dropped, f"labels with fewer than {c.min_label_count} training images")
        rep = None
        if c.report_conditioning:
            from ..data.embed import embed_texts

            if not any(r.text for r in recs):
                raise DataFormatError("report_conditioning needs report texts in record.text (image_folder report_column, or phantom reports: true)")
            rep = embed_texts([r.text or "" for r in recs])
        rt = Runtime(c.device, c.mixed_precision, c.threads)
        total = cfg.vae.steps + cfg.unet.steps
        with ctx.progress(total, "ldm_train", unit="steps") as bar:
            gen = LDMGenerator.fit(X, [[lab for lab in r.labels if lab in labels] for r in recs], config=cfg, labels=labels,
                                   report_embeddings=rep, seed=int(ctx.seed), runtime=rt, progress=lambda _k, n: bar.advance(n),
                                   max_seconds=c.max_minutes * 60 if c.max_minutes else None)
        model_dir = ctx.step_dir / "model"
        gen.meta["modality"] = c.modality
        gen.meta["trained_on"] = {"dataset": ctx.input_names[0], "records": len(recs), "demo": bool(all(r.meta.get("demo") for r in recs))}
        sha = gen.save(model_dir)
        ctx.add_model(f"{ctx.step_name}/ldm", sha)
        ctx.add_artifact(model_dir / "medsynth_ldm.json")
        tr = gen.meta["training"]
        for part in ("vae", "unet"):
            t = tr[part]
            ctx.add_figure(f"{part}.steps", t["steps"], f"optimizer steps of batch {getattr(cfg, part).batch_size}" + (" (stopped at the time budget)" if t["stopped_early"] else ""))
            ctx.add_figure(f"{part}.images_per_second", t["images_per_second"], f"training throughput on {t['device']} ({'crops, ' if part == 'vae' and cfg.vae.crop else ''}wall clock; shared machines vary)")
            ctx.add_figure(f"{part}.seconds", t["seconds"], f"wall-clock training time ({t['cpu_seconds']} CPU-seconds)")
        ctx.add_section("loss_curves", {"plot": {"kind": "lines", "title": "Training loss (EMA)", "xlabel": "step", "ylabel": "loss",
                                                 "series": {k: {"x": [p[0] for p in tr[k]["loss_curve"]], "y": [p[1] for p in tr[k]["loss_curve"]]}
                                                            for k in ("vae", "unet")}},
                                        "caption": "VAE: L1 + KL; UNet: Min-SNR-weighted denoising loss."})
        if c.eval:
            from ..imaging.metrics import ssim

            ev = [r for r in ctx.dataset(c.eval.real) if r.kind == "image"]
            if ev:
                E = record_images(ctx, ev, cfg.size, c.modality)
                s = ssim(gen.reconstruct(E), E)
                ctx.add_figure("vae.reconstruction_ssim", round(float(np.mean(s)), 4), f"mean MONAI SSIM of VAE round trips of {len(ev)} held-out images ({c.eval.real})")
        out = []
        rel = _rel(ctx, model_dir)
        for r in recs:
            rr = r.model_copy(deep=True)
            rr.meta["ldm"] = {"step": ctx.step_name, "model_dir": rel, "model_sha256": sha}
            out.append(rr)
        ctx.write_output(out)


class EvalOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")
    real: str = Field(description="dataset of held-out real images (never trained on): classifier accuracy and FD reference")
    classifier_steps: int = Field(400, ge=10, description="training steps of the finding classifier (trained on the generator's training images)")
    validation: str | None = Field(None, description="dataset used to calibrate the classifier's thresholds (default: none, 0.5)")


class LDMSampleConfig(StepConfig):
    type: Literal["ldm_sample"] = "ldm_sample"
    model: str | None = Field(None, description="ldm_train step name in this recipe, or a bundle folder (default: the step that trained the input records)")
    n: int = Field(200, ge=1, le=1_000_000, description="images to generate")
    conditions: Literal["prior", "balanced"] | list[list[str]] = Field(
        "prior", description="prior: label sets drawn from the training records; balanced: each label alone and no finding, in turn; or a list of label sets cycled")
    sampler: dict[str, Any] = Field(default_factory=dict, description="scheduler (ddim/dpm/ddpm), steps, guidance_scale, eta, batch_size")
    reports_from: str | None = Field(None, description="dataset whose record.text conditions the images (report-conditioned models), cycled")
    formats: list[Literal["png", "dicom"]] = Field(default_factory=lambda: ["png"], description="png (image_path) and/or synthetic DICOM (meta.dicom_path)")
    eval: EvalOptions | None = Field(None, description="classifier accuracy on requested findings, FD vs real held-out images, diversity")

    _eval = field_validator("eval", mode="before")(eval_object)

    @field_validator("sampler")
    @classmethod
    def _sampler(cls, v: dict[str, Any]) -> dict[str, Any]:
        from ..imaging.models import SamplerConfig

        SamplerConfig(**v)
        return v


@register_step
class LDMSampleStep(_StepFolderKey, Step[LDMSampleConfig]):
    """Generate labelled synthetic radiographs (batched, resumable), marked synthetic, optionally evaluated."""

    Config = LDMSampleConfig

    def check(self, recipe: Any) -> list[tuple[str, str]]:
        c = self.config
        if c.model and c.model not in recipe.names:
            p = recipe.resolve_path(c.model)
            if not (p / "medsynth_ldm.json").exists():
                return [("model", f"'{c.model}' is neither a step of this recipe nor a model bundle folder (with medsynth_ldm.json)")]
        return []

    def plan(self, input_sizes: dict[str, int | None]) -> StepPlan:
        return StepPlan(records_in=next(iter(input_sizes.values()), None), records_out=self.config.n)

    def cache_key_extra(self) -> dict[str, Any]:
        out = super().cache_key_extra()
        c = self.config
        if c.model and self.recipe is not None and c.model not in self.recipe.names:
            mf = self.recipe.resolve_path(c.model) / "medsynth_ldm.json"
            if mf.exists():
                out["model_sha256"] = json.loads(mf.read_text(encoding="utf-8")).get("sha256")
        return out

    def _model_dir(self, ctx: StepContext, recs: list[Record]) -> Path:
        c = self.config
        if c.model:
            if ctx.recipe is not None and c.model in ctx.recipe.names:
                d = find_step_dir(ctx.run_dir, c.model)
                if d is None:
                    raise RecipeError(f"step '{c.model}' has not written a model yet")
                return d / "model"
            return ctx.recipe.resolve_path(c.model) if ctx.recipe else Path(c.model)
        for r in recs:
            if "ldm" in r.meta:
                return Path(ctx.run_dir) / r.meta["ldm"]["model_dir"]
        raise RecipeError(f"step '{ctx.step_name}': no model. Set `model:` to the ldm_train step (or a bundle folder), or read the ldm_train step's output.")

    def run(self, ctx: StepContext) -> None:
        import random

        import numpy as np

        from ..imaging.dicom import write_synthetic_dicom
        from ..imaging.io import save_png16
        from ..imaging.models import SamplerConfig
        from ..imaging.pipelines import LDMGenerator

        c = self.config
        recs = ctx.input() if ctx.input_names else []
        gen = LDMGenerator.load(self._model_dir(ctx, recs))
        s = SamplerConfig(**c.sampler)
        rng = random.Random(int(ctx.seed))
        if isinstance(c.conditions, list):
            conds = [list(c.conditions[i % len(c.conditions)]) for i in range(c.n)]
        elif c.conditions == "balanced":
            cycle = [[lab] for lab in gen.labels] + [[]]
            conds = [cycle[i % len(cycle)] for i in range(c.n)]
        else:
            pool = [[lab for lab in r.labels if lab in gen.labels] for r in recs if r.kind == "image"]
            if not pool:
                raise DataFormatError(f"step '{ctx.step_name}': conditions: prior needs the training records as input; or use balanced / a list")
            conds = [sorted(rng.choice(pool)) for _ in range(c.n)]
        rep_all = None
        if gen.uses_reports:
            if not c.reports_from:
                raise RecipeError(f"step '{ctx.step_name}': the model is report-conditioned; set reports_from: to a dataset with report texts")
            from ..data.embed import embed_texts

            texts = [r.text for r in ctx.dataset(c.reports_from) if r.text]
            if not texts:
                raise DataFormatError(f"dataset '{c.reports_from}' has no report texts")
            rep_all = embed_texts([texts[i % len(texts)] for i in range(c.n)])
        out_dir = ctx.step_dir / "images"
        bs = s.batch_size
        nb = (c.n + bs - 1) // bs
        sha = gen.sha256
        series_uid = None
        if "dicom" in c.formats:
            from pydicom.uid import generate_uid

            series_uid = generate_uid(prefix=None)
        with ctx.progress(c.n, "ldm_sample", unit="images", completed=min(c.n, ctx.n_committed() * bs)) as bar:
            for b in ctx.pending_batches(nb):
                lo, hi = b * bs, min(c.n, (b + 1) * bs)
                imgs = gen.generate(conds[lo:hi], sampler=s, seed=int(ctx.seed), start_index=lo,
                                    report_embeddings=rep_all[lo:hi] if rep_all is not None else None)
                batch = []
                for j, img in zip(range(lo, hi), imgs, strict=True):
                    rid = f"{ctx.step_name}-{j:06d}"
                    meta: dict[str, Any] = {"synthetic": True, "requested_labels": conds[j]}
                    if "dicom" in c.formats:
                        dp = write_synthetic_dicom(out_dir / f"{rid}.dcm", img, description=f"latent diffusion sample {j}", labels=conds[j],
                                                   generator="medsynth ldm_sample", model_sha256=sha, series_uid=series_uid, instance_number=j + 1,
                                                   synthetic_id=rid)
                        meta["dicom_path"] = _rel(ctx, dp)
                    path = _rel(ctx, save_png16(out_dir / f"{rid}.png", img))
                    batch.append(Record(id=rid, kind="image", image_path=path, labels=conds[j], meta=meta,
                                        provenance=Provenance(step=ctx.step_name, generator="ldm", model_sha256=sha,
                                                              params={"scheduler": s.scheduler, "steps": s.steps, "guidance_scale": s.guidance_scale,
                                                                      "seed": int(ctx.seed), "index": j})))
                ctx.commit_batch(b, batch)
                bar.advance(len(batch))
        out = ctx.committed()
        out.sort(key=lambda r: r.id)
        ctx.add_figure("images", len(out), f"synthetic images ({s.scheduler}, {s.steps} steps, guidance {s.guidance_scale}); model sha256 {str(sha)[:16]}")
        ctx.add_section("requested_labels", dict(sorted(Counter(lab for r in out for lab in r.labels).items())))
        if c.eval is not None:
            self._evaluate(ctx, c, gen, recs, out)
        _ = np
        ctx.write_output(out)

    def _evaluate(self, ctx: StepContext, c: LDMSampleConfig, gen: Any, train: list[Record], out: list[Record]) -> None:
        import numpy as np

        from ..imaging.metrics import (
            calibrate_thresholds,
            condition_accuracy,
            feature_distance,
            fit_feature_net,
            pairwise_diversity,
        )

        assert c.eval is not None
        size = gen.size
        modality = gen.meta.get("modality")
        train = [r for r in train if r.kind == "image"]
        real = [r for r in ctx.dataset(c.eval.real) if r.kind == "image"]
        if not train or not real:
            raise DataFormatError("eval needs the training records as this step's input and a non-empty eval.real dataset")
        Xtr = record_images(ctx, train, size, modality)
        Xre = record_images(ctx, real, size, modality)
        Xg = record_images(ctx, out, size)
        net = fit_feature_net(Xtr, [[lab for lab in r.labels if lab in gen.labels] for r in train], gen.labels, steps=c.eval.classifier_steps,
                              seed=int(ctx.seed))
        if c.eval.validation:
            val = [r for r in ctx.dataset(c.eval.validation) if r.kind == "image"]
            calibrate_thresholds(net, record_images(ctx, val, size, modality), [r.labels for r in val])
        acc_g = condition_accuracy(net, Xg, [r.labels for r in out])
        acc_r = condition_accuracy(net, Xre, [[lab for lab in r.labels if lab in gen.labels] for r in real])
        how = (f"classifier trained on the {len(train)} real training images ({c.eval.classifier_steps} steps"
               + (f", thresholds calibrated on {c.eval.validation}" if c.eval.validation else ", threshold 0.5") + ")")
        ctx.add_figure("eval.recognised_generated", round(acc_g["recognised"], 4) if acc_g["recognised"] is not None else None,
                       f"share of requested findings the {how} detects in the {len(out)} generated images")
        ctx.add_figure("eval.recognised_real", round(acc_r["recognised"], 4) if acc_r["recognised"] is not None else None,
                       f"the same classifier on the {len(real)} held-out real images ({c.eval.real}; true labels)")
        ctx.add_figure("eval.exact_generated", round(acc_g["exact"], 4), "share of generated images whose predicted finding set equals the requested set")
        ctx.add_figure("eval.exact_real", round(acc_r["exact"], 4), "the same on held-out real images")
        n = min(len(Xg), len(Xre))
        rng = np.random.default_rng(int(ctx.seed))
        gi, ri = rng.choice(len(Xg), n, replace=False), rng.choice(len(Xre), n, replace=False)
        ctx.add_figure("eval.fd_generated_vs_real", round(feature_distance(net, Xg[gi], Xre[ri]), 4),
                       f"Fréchet distance of the in-project classifier's features, {n} generated vs {n} held-out real images")
        if len(Xtr) >= n:
            ti = rng.choice(len(Xtr), n, replace=False)
            ctx.add_figure("eval.fd_train_vs_real", round(feature_distance(net, Xtr[ti], Xre[ri]), 4),
                           f"the same between {n} real training and {n} held-out real images (the floor for a perfect generator)")
        ctx.add_figure("eval.diversity_generated", round(pairwise_diversity(Xg, seed=int(ctx.seed)), 4), "mean 1 − SSIM over random pairs of generated images")
        ctx.add_figure("eval.diversity_real", round(pairwise_diversity(Xre, seed=int(ctx.seed)), 4), "the same over held-out real images")
        groups = {lab: {"generated": (acc_g["per_label"][lab]["recognised"] or 0.0), "real": (acc_r["per_label"][lab]["recognised"] or 0.0)}
                  for lab in gen.labels}
        ctx.add_section("eval_per_label", {"plot": {"kind": "bars", "title": "Requested finding recognised (sensitivity)", "groups": groups},
                                           "caption": f"Per finding: {how}; generated images vs held-out real images."})


class ImputeEvalOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")
    real: str = Field(description="dataset of held-out real pairs (the target is hidden from the model)")
    baselines: list[Literal["copy", "mean", "unet"]] = Field(default_factory=lambda: ["copy", "mean", "unet"],
                                                             description="copy the (first) input; mean training target; supervised U-Net regression (MONAI)")
    unet_steps: int | None = Field(None, ge=1, description="U-Net regression steps (default: the diffusion UNet's step count)")
    feature_steps: int = Field(400, ge=10, description="training steps of the feature network for FD (trained on real target images)")


class ModalityImputeConfig(StepConfig, _ModelOptions):
    type: Literal["modality_impute"] = "modality_impute"
    source: str | list[str] = Field(description="available modality(ies) (meta.modalities names)")
    target: str = Field(description="modality to fill in")
    n_samples: int = Field(4, ge=1, le=64, description="samples per case (their spread is the uncertainty)")
    sampler: dict[str, Any] = Field(default_factory=lambda: {"guidance_scale": 1.0})
    apply: str | None = Field(None, description="dataset whose records get the imputed modality (default: the eval dataset)")
    eval: ImputeEvalOptions | None = Field(None, description="held-out real pairs: SSIM/PSNR/MAE/FD vs baselines")
    model: str | None = Field(None, description="an imputer bundle folder to use instead of training one")
    min_pairs: int = Field(16, ge=2)
    mode: Literal["residual", "palette"] = Field("residual", description=(
        "residual: a regression U-Net predicts the conditional mean and the LDM samples the residual around it "
        "(predict-and-refine / CorrDiff); palette: the LDM samples the target latent from the source latents alone"))
    mean_model: dict[str, Any] = Field(default_factory=dict, description="residual mode: settings of the regression mean "
                                       "(steps, batch_size, lr, channels, folds, residual_quantile; see imaging/pipelines.py MeanModelConfig); "
                                       "steps default to the diffusion UNet's")

    @field_validator("sampler")
    @classmethod
    def _sampler(cls, v: dict[str, Any]) -> dict[str, Any]:
        from ..imaging.models import SamplerConfig

        SamplerConfig(**v)
        return v

    @field_validator("mean_model")
    @classmethod
    def _mean_model(cls, v: dict[str, Any]) -> dict[str, Any]:
        from ..imaging.pipelines import MeanModelConfig

        MeanModelConfig(**v)
        return v

    def mean_model_config(self) -> Any:
        """The residual mode's :class:`MeanModelConfig` (``None`` in palette mode)."""
        from ..imaging.pipelines import MeanModelConfig

        if self.mode != "residual":
            return None
        return MeanModelConfig(**{"steps": self.ldm_config().unet.steps, **self.mean_model})

    @model_validator(mode="before")
    @classmethod
    def _eval_options(cls, data: Any) -> Any:
        """``eval: name`` is ``eval: {real: name}``; the old ``eval_options:`` is merged into ``eval:`` (deprecated)."""
        if not isinstance(data, dict):
            return data
        data = dict(data)
        ev = eval_object(data.get("eval"))
        if "eval_options" in data:
            import warnings

            warnings.warn("modality_impute: `eval_options:` is deprecated and will be removed in the next release; put its keys "
                          "under `eval:` (e.g. `eval: {real: held_out, unet_steps: 4}`)", FutureWarning, stacklevel=2)
            opts = data.pop("eval_options")
            if isinstance(ev, dict) and isinstance(opts, dict):
                ev = {**opts, **ev}
        if ev is not None:
            data["eval"] = ev
        return data

    @property
    def sources(self) -> list[str]:
        return [self.source] if isinstance(self.source, str) else list(self.source)


@register_step
class ModalityImputeStep(_StepFolderKey, Step[ModalityImputeConfig]):
    """Train a conditional LDM on paired records (input) and impute the missing modality, with several samples
    per case, their mean and per-pixel spread; evaluate against baselines on held-out pairs. ``mode: residual``
    (default) samples the residual around a regression mean; ``mode: palette`` samples the target latent directly."""

    Config = ModalityImputeConfig

    def extra_outputs(self) -> list[str]:
        return []

    def check(self, recipe: Any) -> list[tuple[str, str]]:
        c = self.config
        probs = []
        if c.target in c.sources:
            probs.append(("target", "the target modality cannot also be a source"))
        if c.model and not (recipe.resolve_path(c.model) / "medsynth_ldm.json").exists():
            probs.append(("model", f"no imputer bundle at {c.model}"))
        if c.apply is None and c.eval is None:
            probs.append(("apply", "set apply: (records to impute) and/or eval: (held-out pairs)"))
        return probs

    def run(self, ctx: StepContext) -> None:
        import numpy as np

        from ..imaging.io import save_png16
        from ..imaging.models import SamplerConfig
        from ..imaging.pipelines import ModalityImputer
        from ..imaging.train import Runtime

        c = self.config
        cfg = c.ldm_config()
        train = [r for r in ctx.input() if r.kind == "image" and all(modality_path(r, m) for m in [*c.sources, c.target])]
        s = SamplerConfig(**c.sampler)
        rt = Runtime(c.device, c.mixed_precision, c.threads)
        model_dir = ctx.step_dir / "model"
        if c.model:
            imp = ModalityImputer.load(ctx.recipe.resolve_path(c.model) if ctx.recipe else c.model)
            if imp.target != c.target or imp.sources != c.sources:
                raise RecipeError(f"the bundle imputes {imp.target} from {imp.sources}, not {c.target} from {c.sources}")
            if imp.mode != c.mode:
                raise RecipeError(f"the bundle at {c.model} is a {imp.mode}-mode imputer; set mode: {imp.mode} (or train a new one)")
        else:
            if len(train) < c.min_pairs:
                raise DataFormatError(f"step '{ctx.step_name}': {len(train)} training record(s) have both {c.sources} and {c.target}; "
                                      f"at least {c.min_pairs} pairs are needed (min_pairs).")
            Xs = {m: record_images(ctx, train, cfg.size, m) for m in c.sources}
            Xt = record_images(ctx, train, cfg.size, c.target)
            mm = c.mean_model_config()
            mean_steps = mm.steps * (1 + mm.effective_folds(len(train))) if mm else 0
            with ctx.progress(cfg.vae.steps + cfg.unet.steps + mean_steps, "modality_impute (train)", unit="steps") as bar:
                imp = ModalityImputer.fit(Xs, Xt, config=cfg, target_name=c.target, seed=int(ctx.seed), runtime=rt,
                                          progress=lambda _k, n: bar.advance(n), max_seconds=c.max_minutes * 60 if c.max_minutes else None,
                                          mean_model=mm)
            sha = imp.save(model_dir)
            ctx.add_model(f"{ctx.step_name}/imputer", sha)
            ctx.add_artifact(model_dir / "medsynth_ldm.json")
            for part in ("vae", "unet"):
                t = imp.meta["training"][part]
                ctx.add_figure(f"{part}.images_per_second", t["images_per_second"], f"training throughput, {t['steps']} steps on {t['device']} (wall clock; {t['cpu_seconds']} CPU-s)")
            if imp.mode == "residual":
                m = imp.meta["mean_model"]
                ctx.add_figure("mean_model.train_residual_mae", m["train_residual_mae"],
                               f"mean |target − regression mean| over the training pairs, {'out-of-fold (' + str(m['training']['folds']) + ' folds)' if m['training']['folds'] else 'in-sample'}: the residual the LDM models")
        if c.eval:
            self._evaluate(ctx, c, imp, train, s, rt)
        target_name = c.apply or (c.eval.real if c.eval else None)  # check() requires one of them
        target_set = list(ctx.dataset(target_name)) if target_name else []
        todo = [r for r in target_set if r.kind == "image" and all(modality_path(r, m) for m in c.sources)]
        skipped = [r for r in target_set if r not in todo]
        for r in skipped:
            ctx.quarantine(r, "missing_source_modality")
        out_dir = ctx.step_dir / "imputed"
        bs = max(1, s.batch_size // c.n_samples)
        nb = (len(todo) + bs - 1) // bs
        with ctx.progress(len(todo), "modality_impute", unit="cases", completed=min(len(todo), ctx.n_committed() * bs)) as bar:
            for b in ctx.pending_batches(nb):
                part = todo[b * bs:(b + 1) * bs]
                src = {m: record_images(ctx, part, imp.size, m) for m in c.sources}
                smp = imp.impute(src, n_samples=c.n_samples, sampler=s, seed=int(ctx.seed), start_index=b * bs)
                batch = []
                for r, sm in zip(part, smp, strict=True):
                    rr = r.model_copy(deep=True)
                    base = out_dir / r.id
                    mean_p = _rel(ctx, save_png16(Path(f"{base}_{c.target}_mean.png"), sm.mean(0)))
                    std = sm.std(0)
                    std_p = _rel(ctx, save_png16(Path(f"{base}_{c.target}_std.png"), np.clip(std * 4, 0, 1)))
                    samples = [_rel(ctx, save_png16(Path(f"{base}_{c.target}_s{k}.png"), sm[k])) for k in range(len(sm))]
                    mods = dict(rr.meta.get("modalities") or {})
                    had = c.target in mods
                    mods[f"{c.target}_imputed"] = mean_p
                    rr.meta["modalities"] = mods
                    rr.meta["imputed"] = {c.target: {"mean": mean_p, "std_x4": std_p, "samples": samples, "model_sha256": imp.sha256,
                                                     "sources": c.sources, "target_was_present": had,
                                                     "mean_pixel_std": round(float(std.mean()), 5)}}
                    rr.provenance = Provenance(step=ctx.step_name, generator="modality_impute", model_sha256=imp.sha256, seed_record_ids=[r.id],
                                               params={"n_samples": c.n_samples, "scheduler": s.scheduler, "steps": s.steps, "mode": imp.mode})
                    batch.append(rr)
                ctx.commit_batch(b, batch)
                bar.advance(len(batch))
        out = ctx.committed()
        ctx.add_figure("imputed", len(out), f"records given an imputed '{c.target}' ({c.n_samples} samples each: mean, ×4 std map, samples in meta.imputed)")
        ctx.write_output(out)

    def _evaluate(self, ctx: StepContext, c: ModalityImputeConfig, imp: Any, train: list[Record], s: Any, rt: Any) -> None:
        import numpy as np

        from ..imaging.baselines import train_regression_unet
        from ..imaging.metrics import feature_distance, fit_feature_net, mae, psnr, ssim

        assert c.eval is not None
        ev = [r for r in ctx.dataset(c.eval.real) if r.kind == "image" and all(modality_path(r, m) for m in [*c.sources, c.target])]
        if not ev:
            raise DataFormatError(f"eval dataset '{c.eval.real}' has no records with both {c.sources} and {c.target}")
        size = imp.size
        Es = {m: record_images(ctx, ev, size, m) for m in c.sources}
        Et = record_images(ctx, ev, size, c.target)
        smp = imp.impute(Es, n_samples=c.n_samples, sampler=s, seed=int(ctx.seed) + 17)
        pred = {"ldm_mean": smp.mean(1), "ldm_sample": smp[:, 0]}
        if imp.mode == "residual":
            pred["ldm_regression_mean"] = imp.predict_mean(Es)
        Xt = record_images(ctx, train, size, c.target) if train else None
        opts = c.eval
        if "copy" in opts.baselines:
            pred["copy_input"] = Es[c.sources[0]]
        if "mean" in opts.baselines and Xt is not None:
            pred["mean_image"] = np.repeat(Xt.mean(0, keepdims=True), len(Et), axis=0)
        if "unet" in opts.baselines and train:
            Xs = {m: record_images(ctx, train, size, m) for m in c.sources}
            steps = opts.unet_steps or c.ldm_config().unet.steps
            reg, rinfo = train_regression_unet(np.stack([Xs[m] for m in c.sources], 1), Xt, steps=steps, seed=int(ctx.seed), runtime=rt)
            pred["unet_regression"] = reg.predict(np.stack([Es[m] for m in c.sources], 1))
            ctx.add_figure("baseline.unet_images_per_second", rinfo["images_per_second"], f"U-Net regression training throughput ({steps} steps)")
        rows: dict[str, dict[str, float]] = {}
        for name, P in pred.items():
            rows[name] = {"ssim": float(np.mean(ssim(P, Et))), "psnr": float(np.mean(psnr(P, Et))), "mae": float(np.mean(mae(P, Et)))}
        fnet = fit_feature_net(Xt if Xt is not None else Et, None, None, steps=opts.feature_steps, seed=int(ctx.seed), rotation=True)
        for name in ("ldm_sample", "unet_regression", "ldm_mean", "ldm_regression_mean", "mean_image", "copy_input"):
            if name in pred:
                rows[name]["fd"] = feature_distance(fnet, pred[name], Et)
        how = (f"{len(ev)} held-out pairs of '{c.eval.real}', {c.target} from {'+'.join(c.sources)}; {imp.mode}-mode imputer; MONAI SSIM/PSNR/MAE at {size}px"
               + ("; ldm_regression_mean: the imputer's own regression mean, which its samples scatter around" if imp.mode == "residual" else ""))
        for name, r in rows.items():
            for k, v in r.items():
                ctx.add_figure(f"eval.{name}.{k}", round(v, 4), how + (" (ldm_mean: mean of the samples; ldm_sample: one sample per case)" if name.startswith("ldm") else "")
                               + ("; FD: Fréchet distance of a feature network trained on real target images (rotation task)" if k == "fd" else ""))
        std = smp.std(1).mean(axis=(1, 2))
        err = np.abs(smp.mean(1) - Et).mean(axis=(1, 2))
        if len(ev) >= 3:
            from scipy.stats import spearmanr

            rho = float(spearmanr(std, err).statistic)
            ctx.add_figure("eval.uncertainty_error_spearman", round(rho, 4), "Spearman correlation between a case's mean sample spread and its mean absolute error")
        ctx.add_section("eval_table", rows)
        ctx.add_section("eval_ssim", {"plot": {"kind": "bars", "title": "Imputation quality on held-out pairs",
                                               "groups": {n: {"SSIM": r["ssim"], "1 − MAE×10": max(0.0, 1 - 10 * r["mae"])} for n, r in rows.items()}},
                                      "caption": how})
