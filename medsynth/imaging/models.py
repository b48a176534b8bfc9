"""Model configurations and builders for the latent diffusion models (diffusers ``AutoencoderKL`` +
``UNet2DConditionModel``), and the on-disk model bundle.

Two kinds of model share one VAE design:

* **generator** — a UNet conditioned on finding labels (multi-hot vector through the UNet's ``projection`` class
  embedding, one extra "conditioned" bit so that classifier-free guidance has a distinct null condition) and,
  optionally, on a report embedding (MiniLM, 384-d) through cross-attention;
* **imputer** — a Palette-style conditional UNet: the latents of the available modality(ies) are concatenated to
  the noisy latent of the missing one as extra input channels; or, in ``residual`` mode, a regression U-Net predicts
  the conditional mean and the latent diffusion model samples the residual around it (see pipelines.py).

Presets: ``cpu`` (64×64; the generator trains in ≈ 15 min (896 s measured) on 2 CPU threads, see docs/imaging.md), ``cpu_long`` (the
earlier, wider CPU configuration, ≈ 41 min at 64 px), ``tiny`` (unit tests: 16/32 px, seconds), ``gpu`` (128/256 px,
wider networks).

A bundle is a folder: ``medsynth_ldm.json`` (format, kind, size, labels/modalities, latent scaling, training
facts, sha256 of every weight file), ``vae/``, ``unet/`` (EMA weights) and ``scheduler/`` in diffusers'
``save_pretrained`` layout (safetensors).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from ..data.io import sha256_file
from ..exceptions import MissingDependencyError, ModelNotAvailableError

__all__ = ["VAEConfig", "UNetConfig", "SamplerConfig", "PRESETS", "preset", "build_vae", "build_unet", "build_scheduler",
           "save_bundle", "load_bundle", "bundle_sha256", "BUNDLE_FILE", "REPORT_DIM", "require_diffusers"]

BUNDLE_FILE = "medsynth_ldm.json"
REPORT_DIM = 384  # all-MiniLM-L6-v2


def require_diffusers() -> None:
    try:
        import diffusers  # noqa: F401
    except ImportError as e:
        raise MissingDependencyError("diffusers", "imaging", "latent diffusion models") from e


class _Closed(BaseModel):
    model_config = ConfigDict(extra="forbid")


class VAEConfig(_Closed):
    block_out_channels: list[int] = Field(default_factory=lambda: [16, 32, 64], description="channels per level; len-1 = log2(downsampling)")
    latent_channels: int = Field(4, ge=1, le=16)
    layers_per_block: int = Field(1, ge=1, le=3)
    norm_num_groups: int = Field(8, ge=1)
    mid_attention: bool = Field(False, description="self-attention in the VAE's mid block (needs full-image training)")
    steps: int = Field(1500, ge=1, description="optimizer steps")
    batch_size: int = Field(32, ge=1)
    lr: float = Field(1e-3, gt=0)
    kl_weight: float = Field(1e-6, ge=0)
    crop: int = Field(32, ge=0, description="train on random crops of this size (0: full images); the VAE is fully convolutional")
    full_size_fraction: float = Field(0.2, ge=0, le=1, description="last share of the steps trained on full images")

    @model_validator(mode="after")
    def _groups(self) -> VAEConfig:
        for c in self.block_out_channels:
            if c % self.norm_num_groups:
                raise ValueError(f"every VAE channel count must be divisible by norm_num_groups={self.norm_num_groups} (got {c})")
        return self

    @property
    def downsample(self) -> int:
        return 2 ** (len(self.block_out_channels) - 1)


class UNetConfig(_Closed):
    block_out_channels: list[int] = Field(default_factory=lambda: [32, 64, 128])
    attention: list[bool] = Field(default_factory=lambda: [False, True, True], description="self/cross-attention per level")
    layers_per_block: int = Field(1, ge=1, le=3)
    attention_head_dim: int = Field(32, ge=8)
    norm_num_groups: int = Field(16, ge=1)
    steps: int = Field(3000, ge=1)
    batch_size: int = Field(64, ge=1)
    lr: float = Field(5e-4, gt=0)
    warmup_steps: int = Field(100, ge=0)
    ema_decay: float = Field(0.999, ge=0, lt=1, description="EMA of the weights (with warm-up); the EMA weights are saved")
    prediction_type: Literal["epsilon", "v_prediction", "sample"] = "epsilon"
    snr_gamma: float | None = Field(5.0, description="Min-SNR loss weighting (Hang et al. 2023); null for plain MSE")
    num_train_timesteps: int = Field(1000, ge=10)
    beta_schedule: Literal["linear", "scaled_linear", "squaredcos_cap_v2"] = "squaredcos_cap_v2"
    cond_dropout: float = Field(0.15, ge=0, le=1, description="share of training examples with the null condition (classifier-free guidance)")

    @model_validator(mode="after")
    def _lens(self) -> UNetConfig:
        if len(self.attention) != len(self.block_out_channels):
            raise ValueError("unet.attention needs one entry per level of unet.block_out_channels")
        for c in self.block_out_channels:
            if c % self.norm_num_groups:
                raise ValueError(f"every UNet channel count must be divisible by norm_num_groups={self.norm_num_groups} (got {c})")
        return self


class SamplerConfig(_Closed):
    scheduler: Literal["ddim", "dpm", "ddpm"] = Field("ddim", description="ddim (DDIM, eta=0), dpm (DPM-Solver++ multistep) or ddpm (ancestral)")
    steps: int = Field(50, ge=1, le=1000)
    guidance_scale: float = Field(2.0, ge=0, description="classifier-free guidance weight (1 = conditional model alone; 0 = unconditional)")
    eta: float = Field(0.0, ge=0, le=1, description="DDIM stochasticity")
    batch_size: int = Field(32, ge=1)


PRESETS: dict[str, dict[str, Any]] = {
    # 64 px in <= 20 min on 2 CPU threads (bench_imaging.py conditioning_64): 16x16x4 latents (3-level VAE, 800 steps
    # mostly on 32-px crops), a UNet with attention only at its 4x4 level, 2700 steps of batch 32
    "cpu": {"size": 64, "vae": {"steps": 800, "full_size_fraction": 0.1},
            "unet": {"attention": [False, False, True], "batch_size": 32, "steps": 2700, "warmup_steps": 200}},
    # the earlier cpu preset (attention at two levels, batch 64, 1500/3000 steps): ≈ 41 min at 64 px (extrapolated);
    # the 32 px figures of docs/imaging.md were measured with it (step counts overridden)
    "cpu_long": {"size": 64, "vae": {}, "unet": {}},
    # an attempt at 64 px in <= 20 min (latent 8x8 via a 4-level VAE): measured NOT usable (bench_imaging.py
    # conditioning_cpu_fast: VAE recon SSIM 0.80, finding recognised 79 %, FD 664 vs floor 31); kept to reproduce that
    "cpu_fast": {"size": 64, "vae": {"block_out_channels": [16, 32, 64, 64], "latent_channels": 8, "steps": 800}, "unet": {}},
    "tiny": {"size": 32,
             "vae": {"block_out_channels": [8, 16], "norm_num_groups": 4, "steps": 30, "batch_size": 8, "crop": 0, "latent_channels": 4},
             "unet": {"block_out_channels": [16, 32], "attention": [False, True], "norm_num_groups": 8, "attention_head_dim": 8,
                      "steps": 20, "batch_size": 8, "warmup_steps": 2}},
    "gpu": {"size": 128,
            "vae": {"block_out_channels": [64, 128, 256], "norm_num_groups": 32, "steps": 20000, "batch_size": 32, "crop": 64, "mid_attention": True},
            "unet": {"block_out_channels": [128, 256, 384], "attention": [False, True, True], "norm_num_groups": 32, "attention_head_dim": 64,
                     "layers_per_block": 2, "steps": 60000, "batch_size": 64, "lr": 2e-4, "ema_decay": 0.9999}},
}


def preset(name: str) -> dict[str, Any]:
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; known: {', '.join(PRESETS)}")
    return json.loads(json.dumps(PRESETS[name]))


def build_vae(cfg: VAEConfig, channels: int = 1) -> Any:
    require_diffusers()
    from diffusers import AutoencoderKL

    n = len(cfg.block_out_channels)
    return AutoencoderKL(in_channels=channels, out_channels=channels, down_block_types=("DownEncoderBlock2D",) * n,
                         up_block_types=("UpDecoderBlock2D",) * n, block_out_channels=tuple(cfg.block_out_channels),
                         layers_per_block=cfg.layers_per_block, latent_channels=cfg.latent_channels, norm_num_groups=cfg.norm_num_groups,
                         mid_block_add_attention=cfg.mid_attention, sample_size=64)


def build_unet(cfg: UNetConfig, *, latent_channels: int, latent_size: int, cond_channels: int = 0, n_labels: int | None = None,
               report_dim: int | None = None) -> Any:
    """UNet2DConditionModel. ``n_labels`` → label conditioning (multi-hot + 1 "conditioned" bit via the projection
    class embedding); ``report_dim`` → cross-attention on a report embedding token; ``cond_channels`` → extra
    input channels (imputation: source latents, or pixel-unshuffled sources and regression mean)."""
    require_diffusers()
    from diffusers import UNet2DConditionModel

    cross = report_dim is not None
    downs, ups = [], []
    for a in cfg.attention:
        downs.append(("CrossAttnDownBlock2D" if cross else "AttnDownBlock2D") if a else "DownBlock2D")
    for a in reversed(cfg.attention):
        ups.append(("CrossAttnUpBlock2D" if cross else "AttnUpBlock2D") if a else "UpBlock2D")
    kw: dict[str, Any] = {}
    if n_labels is not None:
        kw.update(class_embed_type="projection", projection_class_embeddings_input_dim=n_labels + 1)
    if cross:
        kw.update(cross_attention_dim=report_dim, mid_block_type="UNetMidBlock2DCrossAttn")
    else:
        kw.update(mid_block_type="UNetMidBlock2D")
    return UNet2DConditionModel(sample_size=latent_size, in_channels=latent_channels + cond_channels, out_channels=latent_channels,
                                down_block_types=tuple(downs), up_block_types=tuple(ups), block_out_channels=tuple(cfg.block_out_channels),
                                layers_per_block=cfg.layers_per_block, norm_num_groups=cfg.norm_num_groups,
                                attention_head_dim=cfg.attention_head_dim, **kw)


def build_scheduler(cfg: UNetConfig) -> Any:
    require_diffusers()
    from diffusers import DDPMScheduler

    return DDPMScheduler(num_train_timesteps=cfg.num_train_timesteps, beta_schedule=cfg.beta_schedule, prediction_type=cfg.prediction_type,
                         clip_sample=False)


def bundle_sha256(path: str | Path) -> str:
    """sha256 over the sorted (relative path, sha256) of every weight/config file of a bundle (except the
    bundle json's own ``sha256`` bookkeeping)."""
    root = Path(path)
    h = hashlib.sha256()
    for p in sorted(root.rglob("*")):
        if p.is_file() and p.name != BUNDLE_FILE:
            h.update(f"{p.relative_to(root).as_posix()}:{sha256_file(p)}\n".encode())
    return h.hexdigest()


def save_bundle(out_dir: str | Path, *, vae: Any, unet: Any, scheduler: Any, meta: dict[str, Any],
                extra_state: dict[str, Any] | None = None) -> str:
    """Write the bundle (atomically: a temp folder renamed into place) and return its sha256. ``extra_state``:
    further networks as ``{folder: state_dict}``, each written to ``folder/model.safetensors`` (e.g. the residual
    imputer's regression mean, ``mean/``)."""
    import shutil

    out = Path(out_dir)
    tmp = out.with_name(out.name + ".partial")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    vae.save_pretrained(tmp / "vae", safe_serialization=True)
    unet.save_pretrained(tmp / "unet", safe_serialization=True)
    scheduler.save_pretrained(tmp / "scheduler")
    if extra_state:
        from safetensors.torch import save_file

        for name, state in extra_state.items():
            (tmp / name).mkdir()
            save_file({k: v.detach().cpu().contiguous() for k, v in state.items()}, str(tmp / name / "model.safetensors"))
    sha = bundle_sha256(tmp)
    files = {p.relative_to(tmp).as_posix(): sha256_file(p) for p in sorted(tmp.rglob("*")) if p.is_file()}
    (tmp / BUNDLE_FILE).write_text(json.dumps({"format": "medsynth-ldm/1", **meta, "files": files, "sha256": sha}, indent=2, default=str),
                                   encoding="utf-8")
    if out.exists():
        shutil.rmtree(out)
    tmp.rename(out)
    return sha


def load_bundle(path: str | Path, verify: bool = True) -> tuple[Any, Any, Any, dict[str, Any]]:
    """Load ``(vae, unet, scheduler, meta)`` from a bundle folder, checking every file's sha256 first."""
    require_diffusers()
    root = Path(path)
    mf = root / BUNDLE_FILE
    if not mf.exists():
        raise ModelNotAvailableError(f"{root}: not a medsynth latent-diffusion bundle (no {BUNDLE_FILE}). Train one with an "
                                     "`ldm_train` or `modality_impute` step, or point `model:` at its model/ folder.")
    meta = json.loads(mf.read_text(encoding="utf-8"))
    if verify:
        bad = [rel for rel, sha in meta.get("files", {}).items() if not (root / rel).exists() or sha256_file(root / rel) != sha]
        if bad:
            raise ModelNotAvailableError(f"{root}: {len(bad)} model file(s) changed or missing since training (e.g. {bad[0]}). "
                                         "Re-train, or restore the bundle from the run directory.")
    from diffusers import AutoencoderKL, DDPMScheduler, UNet2DConditionModel

    vae = AutoencoderKL.from_pretrained(root / "vae")
    unet = UNet2DConditionModel.from_pretrained(root / "unet")
    sched = DDPMScheduler.from_pretrained(root / "scheduler")
    vae.eval()
    unet.eval()
    return vae, unet, sched, meta
