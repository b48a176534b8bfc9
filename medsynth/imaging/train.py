"""Training of the VAE and of the diffusion UNets (generator and conditional imputer).

* VAE: L1 reconstruction + KL (weight ``kl_weight``), random crops for most steps (the network is fully
  convolutional), full images at the end; AdamW with cosine decay.
* Diffusion: DDPM noise schedule, epsilon / v / x0 prediction, Min-SNR-γ loss weighting, classifier-free guidance
  dropout of the condition, EMA of the weights (diffusers ``EMAModel`` with warm-up) — the EMA weights are what is
  saved and sampled.
* Hardware: CPU by default (threads from ``torch.set_num_threads``); on a CUDA device the loops run through
  ``accelerate`` with mixed precision (fp16/bf16). Every loop can stop at a wall-clock budget and reports what it
  did (steps, images seen, wall and CPU seconds, images/s).

All randomness comes from a ``torch.Generator`` seeded by the caller.
"""

from __future__ import annotations

import contextlib
import copy
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .models import UNetConfig, VAEConfig, build_vae

__all__ = ["Runtime", "train_vae", "encode_latents", "decode_latents", "train_diffusion", "TrainInfo", "to_model_range", "from_model_range"]


def to_model_range(a: Any) -> Any:
    """[0, 1] images → [-1, 1]."""
    return a * 2.0 - 1.0


def from_model_range(a: Any) -> Any:
    return (a + 1.0) / 2.0


@dataclass
class TrainInfo:
    steps: int = 0
    images_seen: int = 0
    seconds: float = 0.0
    cpu_seconds: float = 0.0
    stopped_early: bool = False
    final_loss: float | None = None
    loss_curve: list[tuple[int, float]] = field(default_factory=list)
    device: str = "cpu"
    mixed_precision: str = "no"

    @property
    def images_per_second(self) -> float:
        return self.images_seen / self.seconds if self.seconds > 0 else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {"steps": self.steps, "images_seen": self.images_seen, "seconds": round(self.seconds, 2), "cpu_seconds": round(self.cpu_seconds, 2),
                "images_per_second": round(self.images_per_second, 2), "stopped_early": self.stopped_early,
                "final_loss": None if self.final_loss is None else round(self.final_loss, 5), "device": self.device,
                "mixed_precision": self.mixed_precision, "loss_curve": [[s, round(v, 5)] for s, v in self.loss_curve]}


class Runtime:
    """Where training runs: plain PyTorch on CPU; ``accelerate`` (mixed precision) on CUDA."""

    def __init__(self, device: str = "auto", mixed_precision: str = "auto", threads: int | None = None):
        import torch

        if threads:
            torch.set_num_threads(int(threads))
        want_cuda = device == "cuda" or (device == "auto" and torch.cuda.is_available())
        if device == "cuda" and not torch.cuda.is_available():
            from ..exceptions import RecipeError

            raise RecipeError("device: cuda was requested but no CUDA device is visible. Use device: auto or cpu.")
        self.accelerator = None
        if want_cuda:
            from accelerate import Accelerator

            mp = mixed_precision if mixed_precision != "auto" else ("bf16" if torch.cuda.is_bf16_supported() else "fp16")
            self.accelerator = Accelerator(mixed_precision=mp)
            self.device = self.accelerator.device
            self.mixed_precision = mp
        else:
            self.device = torch.device("cpu")
            self.mixed_precision = "no"

    def prepare(self, model: Any, opt_fn: Callable[[Any], Any], sched_fn: Callable[[Any], Any] | None = None) -> tuple[Any, Any, Any]:
        model = model.to(self.device)
        opt = opt_fn(model)
        sched = sched_fn(opt) if sched_fn else None
        if self.accelerator is not None:
            if sched is not None:
                model, opt, sched = self.accelerator.prepare(model, opt, sched)
            else:
                model, opt = self.accelerator.prepare(model, opt)
        return model, opt, sched

    def backward(self, loss: Any) -> None:
        if self.accelerator is not None:
            self.accelerator.backward(loss)
        else:
            loss.backward()

    def clip(self, model: Any, max_norm: float) -> None:
        import torch

        if self.accelerator is not None:
            self.accelerator.clip_grad_norm_(model.parameters(), max_norm)
        else:
            torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm)

    def autocast(self) -> Any:
        return self.accelerator.autocast() if self.accelerator is not None else contextlib.nullcontext()

    def unwrap(self, model: Any) -> Any:
        return self.accelerator.unwrap_model(model) if self.accelerator is not None else model


def _cosine(opt: Any, warmup: int, total: int) -> Any:
    from diffusers.optimization import get_cosine_schedule_with_warmup

    return get_cosine_schedule_with_warmup(opt, num_warmup_steps=min(warmup, max(total - 1, 0)), num_training_steps=max(total, 1))


def train_vae(images: np.ndarray, cfg: VAEConfig, *, seed: int = 0, runtime: Runtime | None = None,
              progress: Callable[[int], None] | None = None, max_seconds: float | None = None) -> tuple[Any, TrainInfo]:
    """Train an ``AutoencoderKL`` on ``images`` (float ``[N, H, W]`` or ``[N, C, H, W]`` in [0, 1])."""
    import torch

    rt = runtime or Runtime("cpu")
    x_all = torch.as_tensor(np.asarray(images, dtype=np.float32))
    if x_all.ndim == 3:
        x_all = x_all[:, None]
    n, ch, H, W = x_all.shape
    if n == 0:
        raise ValueError("no images to train the VAE on")
    x_all = to_model_range(x_all)
    g = torch.Generator().manual_seed(int(seed))
    torch.manual_seed(int(seed))
    vae = build_vae(cfg, channels=ch)
    vae.train()
    vae, opt, sched = rt.prepare(vae, lambda m: torch.optim.AdamW(m.parameters(), lr=cfg.lr, weight_decay=1e-4),
                                 lambda o: _cosine(o, min(50, cfg.steps // 10), cfg.steps))
    crop = cfg.crop if 0 < cfg.crop < min(H, W) else 0
    full_from = int(cfg.steps * (1.0 - cfg.full_size_fraction)) if crop else 0
    info = TrainInfo(device=str(rt.device), mixed_precision=rt.mixed_precision)
    t0, c0 = time.time(), time.process_time()
    ema_loss = None
    for step in range(cfg.steps):
        idx = torch.randint(0, n, (cfg.batch_size,), generator=g)
        xb = x_all[idx]
        if crop and step < full_from:
            oy = torch.randint(0, H - crop + 1, (1,), generator=g).item()
            ox = torch.randint(0, W - crop + 1, (1,), generator=g).item()
            xb = xb[:, :, oy:oy + crop, ox:ox + crop]
        xb = xb.to(rt.device)
        with rt.autocast():
            post = vae.encode(xb).latent_dist
            z = post.sample(generator=None)
            rec = vae.decode(z).sample
            loss = (rec.float() - xb).abs().mean() + cfg.kl_weight * post.kl().mean()
        opt.zero_grad(set_to_none=True)
        rt.backward(loss)
        rt.clip(vae, 1.0)
        opt.step()
        sched.step()
        lv = float(loss.detach())
        ema_loss = lv if ema_loss is None else 0.95 * ema_loss + 0.05 * lv
        info.steps = step + 1
        info.images_seen += xb.shape[0]
        if step % max(1, cfg.steps // 50) == 0 or step == cfg.steps - 1:
            info.loss_curve.append((step + 1, ema_loss))
        if progress:
            progress(1)
        if max_seconds is not None and time.time() - t0 > max_seconds:
            info.stopped_early = True
            break
    info.seconds, info.cpu_seconds = time.time() - t0, time.process_time() - c0
    info.final_loss = ema_loss
    vae = rt.unwrap(vae)
    vae.eval()
    return vae.to("cpu") if rt.accelerator is not None else vae, info


def encode_latents(vae: Any, images: np.ndarray, batch_size: int = 64, device: Any = "cpu") -> Any:
    """Posterior means of ``images`` ([N, H, W] or [N, C, H, W] in [0, 1]), unscaled."""
    import torch

    x = torch.as_tensor(np.asarray(images, dtype=np.float32))
    if x.ndim == 3:
        x = x[:, None]
    out = []
    vae = vae.to(device)
    with torch.no_grad():
        for i in range(0, len(x), batch_size):
            out.append(vae.encode(to_model_range(x[i:i + batch_size]).to(device)).latent_dist.mean.float().cpu())
    return torch.cat(out) if out else torch.zeros((0,))


def decode_latents(vae: Any, latents: Any, batch_size: int = 64) -> np.ndarray:
    """Unscaled latents → images float32 [N, H, W] (first channel) in [0, 1]."""
    import torch

    out = []
    dev = next(vae.parameters()).device
    with torch.no_grad():
        for i in range(0, len(latents), batch_size):
            img = vae.decode(latents[i:i + batch_size].to(dev)).sample.float().cpu()
            out.append(from_model_range(img).clamp(0, 1)[:, 0].numpy())
    return np.concatenate(out) if out else np.zeros((0, 1, 1), dtype=np.float32)


def _snr_weights(scheduler: Any, t: Any, gamma: float | None, prediction_type: str) -> Any:
    import torch

    if gamma is None:
        return None
    ac = scheduler.alphas_cumprod.to(t.device)[t]
    snr = ac / (1.0 - ac)
    clipped = torch.clamp(snr, max=gamma)
    if prediction_type == "epsilon":
        return clipped / snr
    if prediction_type == "v_prediction":
        return clipped / (snr + 1.0)
    return clipped  # x0 prediction


def train_diffusion(unet: Any, scheduler: Any, x0: Any, cfg: UNetConfig, *, class_vecs: Any = None, reports: Any = None,
                    cond_latents: Any = None, seed: int = 0, runtime: Runtime | None = None,
                    progress: Callable[[int], None] | None = None, max_seconds: float | None = None) -> tuple[Any, TrainInfo]:
    """DDPM training of ``unet`` on scaled latents ``x0`` [N, C, h, w].

    ``class_vecs`` [N, L+1] (multi-hot + conditioned bit) and ``reports`` [N, 1, D] are dropped together with
    probability ``cfg.cond_dropout`` (classifier-free guidance); ``cond_latents`` [N, Cc, h, w] are concatenated
    to the noisy input and never dropped (imputation). Returns the EMA copy of the network."""
    import torch
    from diffusers.training_utils import EMAModel

    rt = runtime or Runtime("cpu")
    g = torch.Generator().manual_seed(int(seed))
    torch.manual_seed(int(seed))
    n = len(x0)
    unet.train()
    unet, opt, sched = rt.prepare(unet, lambda m: torch.optim.AdamW(m.parameters(), lr=cfg.lr, weight_decay=1e-4),
                                  lambda o: _cosine(o, cfg.warmup_steps, cfg.steps))
    ema = EMAModel(rt.unwrap(unet).parameters(), decay=cfg.ema_decay, use_ema_warmup=True, inv_gamma=1.0, power=2 / 3)
    info = TrainInfo(device=str(rt.device), mixed_precision=rt.mixed_precision)
    t0, c0 = time.time(), time.process_time()
    ema_loss = None
    T = scheduler.config.num_train_timesteps
    for step in range(cfg.steps):
        idx = torch.randint(0, n, (cfg.batch_size,), generator=g)
        lat = x0[idx]
        noise = torch.randn(lat.shape, generator=g)
        t = torch.randint(0, T, (lat.shape[0],), generator=g)
        noisy = scheduler.add_noise(lat, noise, t)
        if cfg.prediction_type == "epsilon":
            target = noise
        elif cfg.prediction_type == "v_prediction":
            target = scheduler.get_velocity(lat, noise, t)
        else:
            target = lat
        kw: dict[str, Any] = {"encoder_hidden_states": None}
        keep = (torch.rand(lat.shape[0], generator=g) >= cfg.cond_dropout).float()
        if class_vecs is not None:
            kw["class_labels"] = (class_vecs[idx] * keep[:, None]).to(rt.device)
        if reports is not None:
            kw["encoder_hidden_states"] = (reports[idx] * keep[:, None, None]).to(rt.device)
        inp = noisy if cond_latents is None else torch.cat([noisy, cond_latents[idx]], dim=1)
        inp, target, tt = inp.to(rt.device), target.to(rt.device), t.to(rt.device)
        with rt.autocast():
            pred = unet(inp, tt, **kw).sample
        err = ((pred.float() - target) ** 2).mean(dim=(1, 2, 3))
        w = _snr_weights(scheduler, tt, cfg.snr_gamma, cfg.prediction_type)
        loss = (err * w).mean() if w is not None else err.mean()
        opt.zero_grad(set_to_none=True)
        rt.backward(loss)
        rt.clip(unet, 1.0)
        opt.step()
        sched.step()
        ema.step(rt.unwrap(unet).parameters())
        lv = float(loss.detach())
        if math.isfinite(lv):
            ema_loss = lv if ema_loss is None else 0.98 * ema_loss + 0.02 * lv
        info.steps = step + 1
        info.images_seen += lat.shape[0]
        if step % max(1, cfg.steps // 50) == 0 or step == cfg.steps - 1:
            info.loss_curve.append((step + 1, float(ema_loss if ema_loss is not None else lv)))
        if progress:
            progress(1)
        if max_seconds is not None and time.time() - t0 > max_seconds:
            info.stopped_early = True
            break
    info.seconds, info.cpu_seconds = time.time() - t0, time.process_time() - c0
    info.final_loss = ema_loss
    final = copy.deepcopy(rt.unwrap(unet)).to("cpu")
    ema.copy_to(final.parameters())
    final.eval()
    return final, info
