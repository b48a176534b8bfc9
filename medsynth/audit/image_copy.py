"""Image memorization audit: is any synthetic image a copy of a private (training) image?

For every synthetic image the audit finds its nearest private image

* by **SSIM** (MONAI; searched exactly among the ``candidates`` nearest private images by pixel L2 and in
  feature space, tolerating translations of up to ``max_shift`` pixels) — a pixel-level copy, also after noise,
  re-windowing or a small shift;
* in the **feature space** of a small CNN trained on the private images only (medsynth.imaging.metrics.FeatureNet,
  shift-augmented) — a copy that was shifted or re-contrasted, which SSIM misses.

A synthetic image is flagged (and quarantined by the gate) when

* its SSIM to the nearest private image reaches ``min_ssim`` — raised, when a holdout is given, to the
  ``holdout_quantile`` *q* of the SSIM that *unseen* real images reach with their nearest private image, moved
  ``holdout_margin`` of the way from *q* to 1 (so that images of one protocol/positioning are not flagged merely
  for looking alike, and a small holdout's maximum does not set the bar); or
* its feature distance to the nearest private image is below ``loo_ratio`` × that private image's distance to
  its own nearest *other* private image (it is closer to one patient's image than any other patient's image is).

Release fails when the flagged share exceeds ``max_flagged_share``, or — with a holdout and ``alpha`` set — when
synthetic images are significantly closer to the private set than unseen real images are (one-sided
Mann–Whitney U on the nearest-private SSIM), i.e. memorization spread over the whole set.

The report gets the SSIM histograms (synthetic vs holdout) and the closest pairs (ids, SSIM, feature distance).
Thumbnails of the pairs are embedded only when every private image is demo data (phantoms, the MNI152
template: ``meta.demo``); real patient images are never put in a report.
"""

from __future__ import annotations

import base64
import io
from typing import Any, Literal

import numpy as np
from pydantic import Field

from ..data.records import Record, id_ref
from ..exceptions import DataFormatError
from ..registry import AUDITS
from .base import Audit, AuditPolicy, AuditResult, Finding

__all__ = ["ImageCopyAudit", "ImageCopyPolicy", "load_record_images", "png_data_uri"]


class ImageCopyPolicy(AuditPolicy):
    min_ssim: float = Field(0.95, gt=0, le=1, description="a synthetic image with SSIM ≥ this to a private image is a copy (protects against pixel-level reproduction of a patient's image, incl. noisy or re-windowed copies)")
    holdout_quantile: float = Field(0.999, gt=0.5, le=1, description="with a holdout, the SSIM threshold rises to this quantile of unseen real images' nearest-private SSIM (protects against flagging images only because one protocol makes all images alike)")
    holdout_margin: float = Field(0.5, ge=0, lt=1, description="with a holdout, the threshold is moved this fraction of the way from the holdout quantile to 1 (protects against flagging novel images because a small holdout's maximum underestimates the tail of unseen images)")
    loo_ratio: float = Field(0.25, gt=0, le=1, description="flagged when closer (feature space) to a private image than this fraction of that image's distance to its nearest other private image (protects against shifted or re-contrasted copies that SSIM misses)")
    max_flagged_share: float = Field(0.0, ge=0, le=1, description="release fails if more than this share of synthetic images are flagged copies (0: any copy fails the release)")
    alpha: float | None = Field(None, gt=0, lt=1, description="if set (and a holdout is given): release fails if synthetic images are significantly closer to private images than unseen real images are (one-sided Mann-Whitney U on nearest-private SSIM): protects against memorization spread over the whole set")
    max_shift: int = Field(3, ge=0, le=16, description="the SSIM search tolerates translations of up to this many pixels (at image_size): protects against a copied image that was only shifted, which plain SSIM misses")
    candidates: int = Field(16, ge=1, le=256, description="private images compared exactly by SSIM per synthetic image (nearest by pixel L2 and by features)")
    image_size: int = Field(64, ge=16, le=512, description="images are compared at this size")
    feature_steps: int = Field(300, ge=0, le=20000, description="training steps of the audit's feature network (on private images); 0 disables the feature criterion")
    closest_pairs: int = Field(8, ge=0, le=64, description="closest pairs listed in the report")
    thumbnails: Literal["auto", "never"] = Field("auto", description="auto: embed pair thumbnails only when every private image is demo data (meta.demo); never: ids and scores only")


def load_record_images(records: list[Record], size: int, run_dir: Any = None, cache_dir: Any = None) -> np.ndarray:
    """The records' images (``image_path``) as float32 [N, size, size]; paths relative to the run directory."""
    from ..imaging.io import load_stack, resolve_image_path

    paths = []
    for r in records:
        if not r.image_path:
            raise DataFormatError(f"record {id_ref(r.id)} has no image_path; the image_copy audit needs image records (kind: image).")
        paths.append(resolve_image_path(r.image_path, run_dir))
    return load_stack(paths, size, cache_dir)


def png_data_uri(img: np.ndarray) -> str:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray((np.clip(img, 0, 1) * 255).astype(np.uint8)).save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


@AUDITS.register("image_copy")
class ImageCopyAudit(Audit):
    explicit_only = True
    name = "image_copy"
    Policy = ImageCopyPolicy
    needs_holdout = False

    def run(self, synthetic: list[Record], private: list[Record], holdout: list[Record] | None = None, **context: Any) -> AuditResult:
        from ..imaging.metrics import fit_feature_net, nearest_neighbours

        p: ImageCopyPolicy = self.policy  # type: ignore[assignment]
        res = AuditResult(self.name, "pass")
        syn = [r for r in synthetic if r.kind == "image"]
        if not syn:
            res.figure("images", 0, "synthetic records of kind image (none: the audit did not apply)")
            return res
        if len(private) < 2:
            res.verdict = "fail"
            res.release_reasons.append("the image_copy audit needs at least 2 private images to compare against; set `private:` to the training images")
            return res
        run_dir, cache = context.get("run_dir"), context.get("cache_dir")
        S = load_record_images(syn, p.image_size, run_dir, cache)
        P = load_record_images(private, p.image_size, run_dir, cache)
        H = load_record_images(holdout, p.image_size, run_dir, cache) if holdout else None
        sf = pf = hf = None
        if p.feature_steps > 0:
            labels = sorted({lab for r in private for lab in r.labels})
            net = fit_feature_net(P, [r.labels for r in private] if labels else None, labels or None, steps=p.feature_steps,
                                  seed=int(context.get("seed", 0)), width=8, rotation=True)
            sf, pf = net.features(S), net.features(P)
            hf = net.features(H) if H is not None else None
        ns = nearest_neighbours(S, P, candidates=p.candidates, q_feats=sf, r_feats=pf, max_shift=p.max_shift)
        thr = p.min_ssim
        hs = None
        if H is not None and len(H):
            nh = nearest_neighbours(H, P, candidates=p.candidates, q_feats=hf, r_feats=pf, max_shift=p.max_shift)
            hs = nh.ssim
            q = float(np.quantile(hs, p.holdout_quantile))
            thr = max(p.min_ssim, q + p.holdout_margin * (1.0 - q))
        loo = None
        if pf is not None:
            npp = nearest_neighbours(P, P, candidates=1, q_feats=pf, r_feats=pf, exclude_self=True)
            loo = npp.feat_dist
        flagged: dict[int, list[str]] = {}
        for i in range(len(syn)):
            if ns.ssim[i] >= thr:
                flagged.setdefault(i, []).append("image_copy_ssim")
            if loo is not None and ns.feat_dist is not None:
                j = int(ns.feat_index[i])  # type: ignore[index]
                if ns.feat_dist[i] < p.loo_ratio * float(loo[j]):
                    flagged.setdefault(i, []).append("image_copy_features")
        for i, reasons in sorted(flagged.items()):
            for reason in reasons:
                val = {"ssim": round(float(ns.ssim[i]), 4), "private_id": private[int(ns.ssim_index[i])].id}
                if ns.feat_dist is not None:
                    val.update(feature_distance=round(float(ns.feat_dist[i]), 5), feature_private_id=private[int(ns.feat_index[i])].id)  # type: ignore[index]
                res.findings.append(Finding(syn[i].id, reason, val))
        share = len(flagged) / len(syn)
        how_ssim = (f"MONAI SSIM at {p.image_size}px to the nearest of {len(private)} private images (exact among the {p.candidates} nearest by "
                    f"pixel L2{' and by features' if sf is not None else ''}; translations up to {p.max_shift} px tolerated)")
        res.figure("images", len(syn), "synthetic image records audited")
        res.figure("ssim_threshold", round(thr, 4), f"max(min_ssim={p.min_ssim}, q + {p.holdout_margin}·(1 − q)) with q the {p.holdout_quantile} quantile of holdout nearest-private SSIM" if hs is not None
                   else f"min_ssim={p.min_ssim} (no holdout given)")
        res.figure("nearest_ssim_median", round(float(np.median(ns.ssim)), 4), how_ssim + ", median over synthetic images")
        res.figure("nearest_ssim_max", round(float(np.max(ns.ssim)), 4), how_ssim + ", maximum over synthetic images")
        if hs is not None:
            res.figure("holdout_nearest_ssim_median", round(float(np.median(hs)), 4), "the same for unseen real (holdout) images")
        res.figure("flagged", len(flagged), f"synthetic images flagged as copies (SSIM ≥ threshold, or feature distance < {p.loo_ratio} × the private image's nearest-other distance)")
        res.figure("flagged_share", round(share, 4), "flagged / audited")
        if share > p.max_flagged_share:
            res.release_reasons.append(f"{len(flagged)} of {len(syn)} synthetic images are copies of private images (share {share:.3f} > {p.max_flagged_share})")
        if p.alpha is not None and hs is not None and len(hs) >= 5:
            from scipy.stats import mannwhitneyu

            pv = float(mannwhitneyu(ns.ssim, hs, alternative="greater").pvalue)
            res.figure("mannwhitney_p", round(pv, 6), "one-sided Mann-Whitney U: synthetic nearest-private SSIM greater than the holdout's")
            if pv < p.alpha:
                res.release_reasons.append(f"synthetic images are closer to private images than unseen real images are (Mann-Whitney p={pv:.2g} < {p.alpha})")
        series = {"synthetic": [round(float(v), 4) for v in ns.ssim]}
        if hs is not None:
            series["holdout (unseen real)"] = [round(float(v), 4) for v in hs]
        res.sections["nearest_ssim"] = {"plot": {"kind": "histogram", "title": "SSIM to the nearest private image", "xlabel": "SSIM", "series": series},
                                        "caption": "Synthetic mass to the right of the holdout mass would indicate memorization; flagged images are quarantined."}
        order = np.argsort(-ns.ssim)[: p.closest_pairs]
        thumbs = p.thumbnails == "auto" and all(r.meta.get("demo") for r in private)
        pairs = []
        for i in order:
            j = int(ns.ssim_index[i])
            row: dict[str, Any] = {"synthetic_id": syn[i].id, "private_id": private[j].id, "ssim": round(float(ns.ssim[i]), 4),
                                   "flagged": bool(i in flagged)}
            if ns.feat_dist is not None:
                row["feature_distance"] = round(float(ns.feat_dist[i]), 5)
            if thumbs:
                row["synthetic_png"] = png_data_uri(S[i])
                row["private_png"] = png_data_uri(P[j])
            pairs.append(row)
        res.sections["closest_pairs"] = {"pairs": pairs, "thumbnails": thumbs,
                                         "caption": "Closest synthetic/private pairs by SSIM" + ("" if thumbs else " (ids only: thumbnails are shown for demo data only)")}
        res.verdict = "fail" if res.release_reasons else "pass"
        return res
