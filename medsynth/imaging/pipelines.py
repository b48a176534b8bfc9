"""Front doors: :class:`LDMGenerator` (label- and optionally report-conditioned radiograph synthesis) and
:class:`ModalityImputer` (conditional LDM that fills in a missing modality, several samples per case: residual
around a regression mean, or Palette-style).

    gen = LDMGenerator.fit(images, label_sets, config=LDMConfig.from_preset("cpu"), seed=0)
    gen.save("model/")
    imgs = LDMGenerator.load("model/").generate([["Cardiomegaly"], []], seed=1)   # float32 [N, H, W] in [0, 1]

    imp = ModalityImputer.fit({"standard": std}, soft, config=LDMConfig.from_preset("cpu"), seed=0,
                              mean_model=MeanModelConfig())                     # residual mode; None: palette
    samples = imp.impute({"standard": std_test}, n_samples=4, seed=1)           # [N, K, H, W]

Sampling uses diffusers schedulers built from the training DDPM configuration: DDIM (deterministic with eta=0),
DPM-Solver++ (multistep) or ancestral DDPM, with classifier-free guidance for the generator. Image ``j`` of a
call depends only on ``(seed, j)``, not on the batch size.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from .models import (
    SamplerConfig,
    UNetConfig,
    VAEConfig,
    build_scheduler,
    build_unet,
    load_bundle,
    preset,
    save_bundle,
)
from .train import Runtime, TrainInfo, decode_latents, encode_latents, train_diffusion, train_vae

__all__ = ["LDMConfig", "LDMGenerator", "ModalityImputer", "MeanModelConfig", "make_scheduler", "condition_vectors"]


class LDMConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    size: int = Field(64, ge=8, description="image side in pixels (64 / 128 / 256)")
    vae: VAEConfig = Field(default_factory=VAEConfig)
    unet: UNetConfig = Field(default_factory=UNetConfig)

    @classmethod
    def from_preset(cls, name: str = "cpu", size: int | None = None, vae: dict[str, Any] | None = None,
                    unet: dict[str, Any] | None = None) -> LDMConfig:
        p = preset(name)
        return cls(size=size or p["size"], vae=VAEConfig(**{**p["vae"], **(vae or {})}), unet=UNetConfig(**{**p["unet"], **(unet or {})}))


def make_scheduler(train_config: dict[str, Any], kind: str, eta: float = 0.0) -> Any:
    from diffusers import DDIMScheduler, DDPMScheduler, DPMSolverMultistepScheduler

    cfg = dict(train_config)
    if kind == "ddim":
        return DDIMScheduler.from_config(cfg, clip_sample=False, set_alpha_to_one=False, timestep_spacing="leading", steps_offset=1)
    if kind == "dpm":
        return DPMSolverMultistepScheduler.from_config(cfg, algorithm_type="dpmsolver++", solver_order=2, timestep_spacing="leading", steps_offset=1)
    return DDPMScheduler.from_config(cfg)


def condition_vectors(label_sets: list[list[str]], labels: list[str]) -> Any:
    """Multi-hot over ``labels`` plus a final "conditioned" bit (1); the null condition is all zeros."""
    import torch

    idx = {lab: i for i, lab in enumerate(labels)}
    v = torch.zeros((len(label_sets), len(labels) + 1))
    for r, ls in enumerate(label_sets):
        for lab in ls:
            if lab in idx:
                v[r, idx[lab]] = 1.0
        v[r, -1] = 1.0
    return v


def _noise(shape: tuple[int, ...], seed: int, start: int) -> Any:
    import torch

    out = torch.empty(shape)
    for j in range(shape[0]):
        out[j] = torch.randn(shape[1:], generator=torch.Generator().manual_seed(int(seed) * 1_000_003 + start + j))
    return out


def _denoise(unet: Any, sched: Any, lat: Any, steps: int, *, eta: float, gen: Any,
             model_kwargs: Callable[[Any], tuple[Any, dict[str, Any]]], guidance: Callable[[Any], Any] | None = None) -> Any:
    import torch

    sched.set_timesteps(steps)
    lat = lat * sched.init_noise_sigma
    with torch.no_grad():
        for t in sched.timesteps:
            inp = sched.scale_model_input(lat, t)
            x_in, kw = model_kwargs(inp)
            out = unet(x_in, t, **kw).sample
            if guidance is not None:
                out = guidance(out)
            extra = {"eta": eta} if "eta" in sched.step.__code__.co_varnames else {}
            if "generator" in sched.step.__code__.co_varnames:
                extra["generator"] = gen
            lat = sched.step(out, t, lat, **extra).prev_sample
    return lat


class _Bundle:
    kind = ""

    def __init__(self, vae: Any, unet: Any, scheduler: Any, meta: dict[str, Any]):
        self.vae, self.unet, self.scheduler, self.meta = vae, unet, scheduler, meta
        self.size = int(meta["size"])
        self.scaling = float(meta["scaling_factor"])
        self.sha256: str | None = meta.get("sha256")

    def _extra_state(self) -> dict[str, Any] | None:
        """Further networks saved with the bundle (``{folder: state_dict}``)."""
        return None

    def save(self, path: str | Path) -> str:
        self.sha256 = save_bundle(path, vae=self.vae, unet=self.unet, scheduler=self.scheduler, meta=self.meta, extra_state=self._extra_state())
        self.meta["sha256"] = self.sha256
        return self.sha256

    @classmethod
    def _from_parts(cls, vae: Any, unet: Any, sched: Any, meta: dict[str, Any], root: Path) -> Any:
        return cls(vae, unet, sched, meta)

    @classmethod
    def load(cls, path: str | Path) -> Any:
        vae, unet, sched, meta = load_bundle(path)
        if meta.get("kind") != cls.kind:
            from ..exceptions import ModelNotAvailableError

            raise ModelNotAvailableError(f"{path}: this bundle is a {meta.get('kind')!r} model, not a {cls.kind!r} one.")
        return cls._from_parts(vae, unet, sched, meta, Path(path))

    @property
    def _downsample(self) -> int:
        return 2 ** (len(self.vae.config.block_out_channels) - 1)

    def _latent_shape(self) -> tuple[int, int, int]:
        c = int(self.vae.config.latent_channels)
        h = self.size // self._downsample
        return c, h, h


def _fit_vae(images: np.ndarray, config: LDMConfig, seed: int, rt: Runtime, progress: Callable[[int], None] | None,
             max_seconds: float | None) -> tuple[Any, TrainInfo, float]:
    vae, vinfo = train_vae(images, config.vae, seed=seed, runtime=rt, progress=progress, max_seconds=max_seconds)
    lat = encode_latents(vae, images)
    std = float(lat.std())
    return vae, vinfo, (1.0 / std if std > 0 else 1.0)


class LDMGenerator(_Bundle):
    """Label-conditioned (optionally report-conditioned) latent diffusion generator."""

    kind = "generator"

    @property
    def labels(self) -> list[str]:
        return list(self.meta["labels"])

    @property
    def uses_reports(self) -> bool:
        return bool(self.meta.get("report_dim"))

    @classmethod
    def fit(cls, images: np.ndarray, label_sets: list[list[str]], *, config: LDMConfig, labels: list[str] | None = None,
            report_embeddings: np.ndarray | None = None, seed: int = 0, runtime: Runtime | None = None,
            progress: Callable[[str, int], None] | None = None, max_seconds: float | None = None) -> LDMGenerator:
        """Train the VAE, then the conditional UNet, on ``images`` [N, H, W] in [0, 1] with their label sets.
        ``max_seconds`` bounds the total wall time (the VAE gets a quarter of it)."""
        import torch

        rt = runtime or Runtime()
        labels = list(labels) if labels is not None else sorted({lab for ls in label_sets for lab in ls})
        if images.shape[1:] != (config.size, config.size):
            raise ValueError(f"images are {images.shape[1:]} but the model is configured for {config.size}×{config.size}")
        t0 = time.time()
        vae, vinfo, scaling = _fit_vae(images, config, seed, rt, (lambda k: progress("vae", k)) if progress else None,
                                       max_seconds / 4 if max_seconds is not None else None)
        lat = encode_latents(vae, images) * scaling
        c, h, _ = lat.shape[1:]
        torch.manual_seed(int(seed) + 1)
        rep = None
        if report_embeddings is not None:
            rep = torch.as_tensor(np.asarray(report_embeddings, dtype=np.float32)).reshape(len(images), 1, -1)
        unet = build_unet(config.unet, latent_channels=c, latent_size=h, n_labels=len(labels),
                          report_dim=int(rep.shape[-1]) if rep is not None else None)
        sched = build_scheduler(config.unet)
        left = max(0.0, max_seconds - (time.time() - t0)) if max_seconds is not None else None
        unet, uinfo = train_diffusion(unet, sched, lat, config.unet, class_vecs=condition_vectors(label_sets, labels), reports=rep,
                                      seed=int(seed) + 2, runtime=rt, progress=(lambda k: progress("unet", k)) if progress else None,
                                      max_seconds=left)
        meta = {"kind": cls.kind, "size": config.size, "labels": labels, "scaling_factor": scaling, "config": config.model_dump(),
                "report_dim": int(rep.shape[-1]) if rep is not None else None, "n_train": int(len(images)),
                "label_counts": {lab: int(sum(lab in ls for ls in label_sets)) for lab in labels},
                "training": {"vae": vinfo.as_dict(), "unet": uinfo.as_dict()}}
        return cls(vae, unet, sched, meta)

    def generate(self, label_sets: list[list[str]], *, sampler: SamplerConfig | None = None, seed: int = 0,
                 report_embeddings: np.ndarray | None = None, start_index: int = 0,
                 progress: Callable[[int], None] | None = None) -> np.ndarray:
        """One image per label set (float32 [N, H, W] in [0, 1]); unknown labels raise."""
        import torch

        s = sampler or SamplerConfig()
        unknown = sorted({lab for ls in label_sets for lab in ls} - set(self.labels))
        if unknown:
            raise ValueError(f"the model was not trained on label(s) {unknown}; it knows {self.labels}")
        if self.uses_reports and report_embeddings is None:
            raise ValueError("this model is conditioned on report embeddings: pass report_embeddings (one per image)")
        cond = condition_vectors(label_sets, self.labels)
        rep = None
        if report_embeddings is not None:
            rep = torch.as_tensor(np.asarray(report_embeddings, dtype=np.float32)).reshape(len(label_sets), 1, -1)
        shape = self._latent_shape()
        out = []
        w = float(s.guidance_scale)
        for b in range(0, len(label_sets), s.batch_size):
            cb = cond[b:b + s.batch_size]
            nb = len(cb)
            lat0 = _noise((nb, *shape), seed, start_index + b)
            sched = make_scheduler(self.scheduler.config, s.scheduler)
            gen = torch.Generator().manual_seed(int(seed) * 7919 + start_index + b)
            rb = rep[b:b + nb] if rep is not None else None

            def kwargs(x: Any, cb: Any = cb, rb: Any = rb) -> tuple[Any, dict[str, Any]]:
                if w == 1.0:
                    return x, {"class_labels": cb, "encoder_hidden_states": rb}
                if w == 0.0:
                    return x, {"class_labels": torch.zeros_like(cb), "encoder_hidden_states": None if rb is None else torch.zeros_like(rb)}
                return torch.cat([x, x]), {"class_labels": torch.cat([cb, torch.zeros_like(cb)]),
                                           "encoder_hidden_states": None if rb is None else torch.cat([rb, torch.zeros_like(rb)])}

            def guide(o: Any, nb: int = nb) -> Any:
                if w in (0.0, 1.0):
                    return o
                oc, ou = o[:nb], o[nb:]
                return ou + w * (oc - ou)

            lat = _denoise(self.unet, sched, lat0, s.steps, eta=s.eta, gen=gen, model_kwargs=kwargs, guidance=guide)
            out.append(decode_latents(self.vae, lat / self.scaling))
            if progress:
                progress(nb)
        return np.concatenate(out) if out else np.zeros((0, self.size, self.size), dtype=np.float32)

    def reconstruct(self, images: np.ndarray) -> np.ndarray:
        """VAE round trip (the ceiling of what the generator can draw)."""
        return decode_latents(self.vae, encode_latents(self.vae, images))


class MeanModelConfig(BaseModel):
    """The regression half of a ``residual`` imputer (MONAI U-Net, L1; see :func:`.baselines.train_regression_unet`)."""

    model_config = ConfigDict(extra="forbid")
    steps: int = Field(1500, ge=1, description="optimizer steps of each regression fit")
    batch_size: int = Field(32, ge=2)
    lr: float = Field(1e-3, gt=0)
    channels: list[int] = Field(default_factory=lambda: [16, 32, 64, 128], description="U-Net channels per level (stride 2 between levels)")
    folds: int = Field(2, ge=0, le=10, description="cross-fitting: the training residuals come from regressions that did not see "
                                                   "those pairs, so they are as large as on new cases (0: in-sample residuals; "
                                                   "costs folds + 1 regression fits)")
    residual_quantile: float = Field(0.999, gt=0.5, le=1.0, description="the |residual| quantile mapped to the VAE's range (larger ones are clipped)")

    def effective_folds(self, n_pairs: int) -> int:
        """Cross-fitting folds used for ``n_pairs`` training pairs: 0 (in-sample) when ``folds`` < 2 or there are
        fewer than 2 pairs per fold; the regression fits are ``1 + effective_folds``."""
        return self.folds if self.folds >= 2 and n_pairs >= 2 * self.folds else 0


def _pixel_condition(stack: np.ndarray, factor: int) -> Any:
    """[N, C, H, W] images in [0, 1] → [N, C·f², H/f, W/f] in [-1, 1] (pixel unshuffle: lossless, at latent size)."""
    import torch
    import torch.nn.functional as F

    x = torch.as_tensor(np.asarray(stack, dtype=np.float32)) * 2 - 1
    return F.pixel_unshuffle(x, factor) if factor > 1 else x


def _residual_to_unit(residual: np.ndarray, scale: float) -> np.ndarray:
    """Residuals in [-scale, scale] → the VAE's [0, 1] image range (larger ones clipped)."""
    return np.clip(0.5 + residual / (2 * scale), 0.0, 1.0).astype(np.float32)


def _add_unit_residual(mu: np.ndarray, unit: np.ndarray, scale: float) -> np.ndarray:
    """Inverse of :func:`_residual_to_unit`, added to the mean: ``mu + residual`` clipped to [0, 1]."""
    return np.clip(mu + (2.0 * unit - 1.0) * scale, 0.0, 1.0).astype(np.float32)


class ModalityImputer(_Bundle):
    """Conditional LDM that fills in a missing modality, in one of two modes:

    * ``palette`` — noisy target latent ‖ source latents → target latent (Saharia et al. 2022, in latent space);
    * ``residual`` — a regression U-Net predicts the conditional mean ``mu(sources)``; a VAE trained on the
      residuals ``target − mu`` and a diffusion UNet conditioned on the pixel-unshuffled sources and ``mu`` sample the
      residual, so a sample is ``mu + residual``. This is the predict-and-refine / residual-corrective design of
      Whang et al. (CVPR 2022) and Mardani et al. (CorrDiff, 2023): where the mapping is nearly deterministic the
      samples keep the regression's fidelity, and the diffusion model supplies what a conditional mean smooths
      away (texture, noise, the spread of plausible answers). The training residuals come from cross-fitted
      regressions (``MeanModelConfig.folds``) so that their size matches the errors on new cases.
    """

    kind = "imputer"

    def __init__(self, vae: Any, unet: Any, scheduler: Any, meta: dict[str, Any], mean_net: Any = None):
        super().__init__(vae, unet, scheduler, meta)
        self.mean_net = mean_net

    @property
    def mode(self) -> str:
        return str(self.meta.get("mode", "palette"))

    @property
    def sources(self) -> list[str]:
        return list(self.meta["sources"])

    @property
    def target(self) -> str:
        return str(self.meta["target"])

    def _extra_state(self) -> dict[str, Any] | None:
        return {"mean": self.mean_net.net.state_dict()} if self.mean_net is not None else None

    @classmethod
    def _from_parts(cls, vae: Any, unet: Any, sched: Any, meta: dict[str, Any], root: Path) -> ModalityImputer:
        mean_net = None
        if meta.get("mode") == "residual":
            from safetensors.torch import load_file

            from .baselines import RegressionUNet, build_regression_net

            mm = meta["mean_model"]
            net = build_regression_net(len(meta["sources"]), tuple(mm["config"]["channels"]))
            net.load_state_dict(load_file(str(root / "mean" / "model.safetensors")))
            net.eval()
            mean_net = RegressionUNet(net)
        return cls(vae, unet, sched, meta, mean_net=mean_net)

    @classmethod
    def fit(cls, sources: dict[str, np.ndarray], target: np.ndarray, *, config: LDMConfig, target_name: str = "target",
            seed: int = 0, runtime: Runtime | None = None, progress: Callable[[str, int], None] | None = None,
            max_seconds: float | None = None, mean_model: MeanModelConfig | None = None) -> ModalityImputer:
        """``mean_model=None``: palette mode, one VAE for all modalities (trained on sources and target together),
        then the conditional UNet. With a :class:`MeanModelConfig`: residual mode (class docstring); the VAE is
        trained on the residuals. ``max_seconds`` bounds the VAE and diffusion training (a quarter to the VAE)."""
        import torch

        rt = runtime or Runtime()
        names = list(sources)
        n = len(target)
        for k, v in sources.items():
            if v.shape != target.shape:
                raise ValueError(f"source modality {k!r} has shape {v.shape}, the target {target.shape}; pairs must match")
        if target.shape[1:] != (config.size, config.size):
            raise ValueError(f"images are {target.shape[1:]} but the model is configured for {config.size}×{config.size}")
        meta: dict[str, Any] = {"kind": cls.kind, "mode": "palette" if mean_model is None else "residual"}
        mean_net = None
        if mean_model is None:
            t0 = time.time()
            allimg = np.concatenate([target, *[sources[k] for k in names]])
            vae, vinfo, scaling = _fit_vae(allimg, config, seed, rt, (lambda k: progress("vae", k)) if progress else None,
                                           max_seconds / 4 if max_seconds is not None else None)
            tl = encode_latents(vae, target) * scaling
            cond = torch.cat([encode_latents(vae, sources[k]) * scaling for k in names], dim=1)
        else:
            S = np.stack([np.asarray(sources[k], dtype=np.float32) for k in names], 1)
            mean_net, mu, minfo = _fit_mean(S, np.asarray(target, dtype=np.float32), mean_model, seed, rt, progress)
            R = np.asarray(target, dtype=np.float32) - mu
            scale = max(float(np.quantile(np.abs(R), mean_model.residual_quantile)), 1e-4)
            U = _residual_to_unit(R, scale)
            t0 = time.time()
            vae, vinfo, scaling = _fit_vae(U, config, seed, rt, (lambda k: progress("vae", k)) if progress else None,
                                           max_seconds / 4 if max_seconds is not None else None)
            tl = encode_latents(vae, U) * scaling
            cond = _pixel_condition(np.concatenate([S, mu[:, None]], 1), config.vae.downsample)
            meta["mean_model"] = {"config": mean_model.model_dump(), "residual_scale": scale, "training": minfo,
                                  "train_residual_mae": round(float(np.abs(R).mean()), 6)}
        c, h, _ = tl.shape[1:]
        torch.manual_seed(int(seed) + 1)
        unet = build_unet(config.unet, latent_channels=c, latent_size=h, cond_channels=int(cond.shape[1]))
        sched = build_scheduler(config.unet)
        ucfg = config.unet.model_copy(update={"cond_dropout": 0.0})
        left = max(0.0, max_seconds - (time.time() - t0)) if max_seconds is not None else None
        unet, uinfo = train_diffusion(unet, sched, tl, ucfg, cond_latents=cond, seed=int(seed) + 2, runtime=rt,
                                      progress=(lambda k: progress("unet", k)) if progress else None, max_seconds=left)
        meta.update({"size": config.size, "sources": names, "target": target_name, "scaling_factor": scaling,
                     "config": config.model_dump(), "n_train": int(n), "training": {"vae": vinfo.as_dict(), "unet": uinfo.as_dict()}})
        return cls(vae, unet, sched, meta, mean_net=mean_net)

    def _stack(self, sources: dict[str, np.ndarray]) -> np.ndarray:
        missing = [k for k in self.sources if k not in sources]
        if missing:
            raise ValueError(f"the imputer needs source modality(ies) {missing}; it was trained on {self.sources}")
        return np.stack([np.asarray(sources[k], dtype=np.float32) for k in self.sources], 1)

    def predict_mean(self, sources: dict[str, np.ndarray]) -> np.ndarray:
        """Residual mode: the regression's conditional mean [N, H, W] (what the samples scatter around)."""
        if self.mean_net is None:
            raise ValueError("this imputer is a palette-mode model: it has no regression mean (use impute(...).mean(1))")
        return self.mean_net.predict(self._stack(sources))

    def impute(self, sources: dict[str, np.ndarray], *, n_samples: int = 4, sampler: SamplerConfig | None = None, seed: int = 0,
               start_index: int = 0, progress: Callable[[int], None] | None = None) -> np.ndarray:
        """``n_samples`` draws of the missing modality per case: float32 [N, K, H, W] in [0, 1]."""
        import torch

        s = sampler or SamplerConfig()
        S = self._stack(sources)
        n = len(S)
        mu = None
        if self.mean_net is not None:
            mu = self.mean_net.predict(S)
            cond = _pixel_condition(np.concatenate([S, mu[:, None]], 1), self._downsample)
        else:
            cond = torch.cat([encode_latents(self.vae, S[:, i]) * self.scaling for i in range(S.shape[1])], dim=1)
        shape = self._latent_shape()
        # case i, sample k → flat index i*K + k (independent of the batch size)
        flat = cond.repeat_interleave(n_samples, dim=0)
        out = []
        for b in range(0, len(flat), s.batch_size):
            cb = flat[b:b + s.batch_size]
            nb = len(cb)
            lat0 = _noise((nb, *shape), seed, start_index * n_samples + b)
            sched = make_scheduler(self.scheduler.config, s.scheduler)
            gen = torch.Generator().manual_seed(int(seed) * 7919 + start_index * n_samples + b)
            lat = _denoise(self.unet, sched, lat0, s.steps, eta=s.eta, gen=gen,
                           model_kwargs=lambda x, cb=cb: (torch.cat([x, cb], dim=1), {"encoder_hidden_states": None}))
            out.append(decode_latents(self.vae, lat / self.scaling))
            if progress:
                progress(nb)
        arr = np.concatenate(out) if out else np.zeros((0, self.size, self.size), dtype=np.float32)
        arr = arr.reshape(n, n_samples, self.size, self.size)
        if mu is not None:
            arr = _add_unit_residual(mu[:, None], arr, self._residual_scale)
        return arr

    @property
    def _residual_scale(self) -> float:
        return float(self.meta["mean_model"]["residual_scale"])

    def reconstruct(self, sources: dict[str, np.ndarray], target: np.ndarray) -> np.ndarray:
        """The VAE round trip of the true ``target`` (the ceiling of what the samples can draw): in palette mode the
        target itself, in residual mode its residual around the regression mean, added back to the mean."""
        if self.mean_net is None:
            return decode_latents(self.vae, encode_latents(self.vae, target))
        mu = self.predict_mean(sources)
        unit = _residual_to_unit(np.asarray(target, dtype=np.float32) - mu, self._residual_scale)
        return _add_unit_residual(mu, decode_latents(self.vae, encode_latents(self.vae, unit)), self._residual_scale)


def _fit_mean(S: np.ndarray, T: np.ndarray, cfg: MeanModelConfig, seed: int, rt: Runtime,
              progress: Callable[[str, int], None] | None) -> tuple[Any, np.ndarray, dict[str, Any]]:
    """The final regression on every pair, and the training-set predictions the residuals are taken from:
    out-of-fold (``cfg.folds`` ≥ 2: each fold predicted by a regression trained on the other folds) or in-sample."""
    from .baselines import train_regression_unet

    n = len(T)
    folds = cfg.effective_folds(n)
    kw = {"steps": cfg.steps, "batch_size": cfg.batch_size, "lr": cfg.lr, "channels": tuple(cfg.channels), "runtime": rt,
          "progress": (lambda k: progress("mean", k)) if progress else None}
    t0 = time.time()
    final, info = train_regression_unet(S, T, seed=int(seed) + 3, **kw)
    if folds:
        perm = np.random.default_rng(int(seed) + 4).permutation(n)
        mu = np.zeros_like(T)
        for f in range(folds):
            held = perm[f::folds]
            keep = np.setdiff1d(perm, held)
            reg, _ = train_regression_unet(S[keep], T[keep], seed=int(seed) + 5 + f, **kw)
            mu[held] = reg.predict(S[held])
    else:
        mu = final.predict(S)
    return final, mu, {"fits": 1 + folds, "folds": folds, "seconds": round(time.time() - t0, 2),
                       "images_per_second": info["images_per_second"]}
