"""Image metrics: SSIM / PSNR / MAE (MONAI), a feature network trained in-project (no hub weights) for a
Fréchet distance and for per-condition accuracy, diversity, and nearest-neighbour search for the memorization
audit.

``FeatureNet`` is a small GroupNorm CNN trained on *real* images only: a multi-label finding head (when labels
exist) plus a 4-way rotation head (self-supervised, so the features are useful without labels too). Its pooled
penultimate features give the FID-style distance ("FD-medsynth"); its finding head is the classifier applied to
generated images. FD values are comparable only between sets of the same size scored by the same network.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["ssim", "psnr", "mae", "FeatureNet", "fit_feature_net", "frechet_distance", "feature_distance", "condition_accuracy",
           "pairwise_diversity", "nearest_neighbours", "NearestResult", "calibrate_thresholds", "multi_hot"]


def _t(a: np.ndarray) -> Any:
    import torch

    x = torch.as_tensor(np.asarray(a, dtype=np.float32))
    return x[:, None] if x.ndim == 3 else x


def ssim(a: np.ndarray, b: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """Per-image SSIM (MONAI ``SSIMMetric``, Gaussian window 11, σ 1.5, data range 1) of [N, H, W] pairs."""
    from monai.metrics import SSIMMetric

    m = SSIMMetric(spatial_dims=2, data_range=1.0, win_size=min(11, int(np.asarray(a).shape[-1]) // 2 * 2 - 1))
    out = []
    for i in range(0, len(a), batch_size):
        out.append(m(_t(a[i:i + batch_size]), _t(b[i:i + batch_size])).reshape(-1).numpy())
    return np.concatenate(out) if out else np.zeros(0)


def psnr(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    from monai.metrics import PSNRMetric

    return PSNRMetric(max_val=1.0)(_t(a), _t(b)).reshape(-1).numpy()


def mae(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    from monai.metrics import MAEMetric

    return MAEMetric()(_t(a), _t(b)).reshape(-1).numpy()


def multi_hot(label_sets: list[list[str]], labels: list[str]) -> np.ndarray:
    idx = {lab: i for i, lab in enumerate(labels)}
    y = np.zeros((len(label_sets), len(labels)), dtype=np.float32)
    for r, ls in enumerate(label_sets):
        for lab in ls:
            if lab in idx:
                y[r, idx[lab]] = 1.0
    return y


def _make_net(n_labels: int, width: int) -> Any:
    import torch
    from torch import nn

    class _Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            w = width

            def block(ci: int, co: int, s: int) -> list[nn.Module]:
                return [nn.Conv2d(ci, co, 3, stride=s, padding=1), nn.GroupNorm(min(8, co), co), nn.SiLU()]

            self.body = nn.Sequential(*block(1, w, 1), *block(w, 2 * w, 2), *block(2 * w, 2 * w, 1), *block(2 * w, 4 * w, 2),
                                      *block(4 * w, 4 * w, 1), *block(4 * w, 8 * w, 2), *block(8 * w, 8 * w, 1))
            self.dim = 16 * w  # mean- and max-pooled: small findings (nodules) survive the pooling
            self.labels = nn.Linear(self.dim, max(n_labels, 1))
            self.rot = nn.Linear(self.dim, 4)

        def features(self, x: Any) -> Any:
            h = self.body(x)
            return torch.cat([h.mean(dim=(2, 3)), h.amax(dim=(2, 3))], dim=1)

        def forward(self, x: Any) -> tuple[Any, Any]:
            f = self.features(x)
            return self.labels(f), self.rot(f)

    return _Net()


class FeatureNet:
    """A trained feature/classifier network. ``features`` → [N, D]; ``predict_proba`` → [N, L]."""

    def __init__(self, net: Any, labels: list[str], size: int, thresholds: np.ndarray | None = None):
        self.net, self.labels, self.size = net, list(labels), size
        self.thresholds = thresholds if thresholds is not None else np.full(len(labels), 0.5, dtype=np.float32)

    def _batches(self, images: np.ndarray, fn: Any, batch_size: int = 256) -> np.ndarray:
        import torch

        self.net.eval()
        out = []
        with torch.no_grad():
            for i in range(0, len(images), batch_size):
                out.append(fn(_t(images[i:i + batch_size]) * 2 - 1).float().numpy())
        return np.concatenate(out) if out else np.zeros((0, 1), dtype=np.float32)

    def features(self, images: np.ndarray) -> np.ndarray:
        return self._batches(images, self.net.features)

    def predict_proba(self, images: np.ndarray) -> np.ndarray:
        import torch

        return self._batches(images, lambda x: torch.sigmoid(self.net(x)[0]))[:, : len(self.labels)]

    def predict(self, images: np.ndarray) -> np.ndarray:
        return (self.predict_proba(images) >= self.thresholds[None]).astype(np.float32)


def fit_feature_net(images: np.ndarray, label_sets: list[list[str]] | None = None, labels: list[str] | None = None, *, steps: int = 600,
                    batch_size: int = 64, lr: float = 2e-3, width: int = 16, seed: int = 0, augment: bool = True,
                    rotation: bool | None = None) -> FeatureNet:
    """Train on real images: BCE on the finding labels (if any) and/or cross-entropy on the 4 rotations
    (``rotation=None``: only when there are no labels). Augmentation:
    shifts of up to 2 pixels, gain 0.9–1.1, Gaussian noise σ ≤ 0.01 (never flips: anatomy is not symmetric)."""
    import torch
    import torch.nn.functional as F

    g = torch.Generator().manual_seed(int(seed))
    torch.manual_seed(int(seed))
    labels = list(labels or sorted({lab for ls in (label_sets or []) for lab in ls}))
    y = torch.as_tensor(multi_hot(label_sets, labels)) if (label_sets is not None and labels) else None
    x_all = _t(images)
    n = len(x_all)
    net = _make_net(len(labels), width)
    use_rot = (y is None) if rotation is None else bool(rotation)
    opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=max(steps, 1), pct_start=0.15)
    net.train()
    for _ in range(steps):
        idx = torch.randint(0, n, (min(batch_size, n),), generator=g)
        xb = x_all[idx].clone()
        if augment:
            dy, dx = (int(v) for v in torch.randint(-2, 3, (2,), generator=g))
            xb = torch.roll(xb, shifts=(dy, dx), dims=(2, 3))
            xb = xb * (0.9 + 0.2 * torch.rand((len(xb), 1, 1, 1), generator=g)) + 0.01 * torch.rand((len(xb), 1, 1, 1), generator=g) * torch.randn(xb.shape, generator=g)
        loss = torch.zeros(())
        if use_rot:
            rot = torch.randint(0, 4, (len(xb),), generator=g)
            xr = torch.stack([torch.rot90(xb[i], int(rot[i]), dims=(1, 2)) for i in range(len(xb))])
            _, logits_r = net(xr.clamp(0, 1) * 2 - 1)
            loss = loss + F.cross_entropy(logits_r, rot)
        if y is not None:
            logits_l, _ = net(xb.clamp(0, 1) * 2 - 1)
            loss = loss + F.binary_cross_entropy_with_logits(logits_l[:, : len(labels)], y[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
    net.eval()
    return FeatureNet(net, labels, int(x_all.shape[-1]))


def calibrate_thresholds(net: FeatureNet, images: np.ndarray, label_sets: list[list[str]]) -> np.ndarray:
    """Per-label thresholds maximising balanced accuracy on a *validation* set (never the test set)."""
    P = net.predict_proba(images)
    Y = multi_hot(label_sets, net.labels)
    th = np.full(len(net.labels), 0.5, dtype=np.float32)
    for j in range(len(net.labels)):
        pos, neg = Y[:, j] == 1, Y[:, j] == 0
        if not pos.any() or not neg.any():
            continue
        best, bt = -1.0, 0.5
        for t in np.linspace(0.05, 0.95, 37):
            ba = 0.5 * ((P[pos, j] >= t).mean() + (P[neg, j] < t).mean())
            if ba > best + 1e-9:
                best, bt = ba, float(t)
        th[j] = bt
    net.thresholds = th
    return th


def condition_accuracy(net: FeatureNet, images: np.ndarray, requested: list[list[str]]) -> dict[str, Any]:
    """How often the classifier sees what was requested.

    ``recognised`` = share of (image, requested finding) pairs the classifier detects (sensitivity on requests);
    ``absent_ok`` = share of (image, not-requested finding) pairs it does not detect; ``per_label`` accuracy over
    all images (present and absent requests); ``exact`` = share of images whose predicted set equals the request.
    """
    pred = net.predict(images)
    Y = multi_hot(requested, net.labels)
    out: dict[str, Any] = {"n": int(len(images))}
    pos, neg = Y == 1, Y == 0
    out["recognised"] = float(pred[pos].mean()) if pos.any() else None
    out["absent_ok"] = float(1 - pred[neg].mean()) if neg.any() else None
    out["exact"] = float((pred == Y).all(axis=1).mean()) if len(Y) else None
    out["per_label"] = {}
    for j, lab in enumerate(net.labels):
        pj, yj = pred[:, j], Y[:, j]
        out["per_label"][lab] = {"accuracy": float((pj == yj).mean()) if len(yj) else None,
                                 "recognised": float(pj[yj == 1].mean()) if (yj == 1).any() else None,
                                 "n_requested": int((yj == 1).sum())}
    return out


def frechet_distance(f1: np.ndarray, f2: np.ndarray) -> float:
    """Fréchet distance between Gaussians fitted to two feature sets (as in FID)."""
    from scipy import linalg

    f1, f2 = np.asarray(f1, dtype=np.float64), np.asarray(f2, dtype=np.float64)
    mu1, mu2 = f1.mean(0), f2.mean(0)
    s1, s2 = np.cov(f1, rowvar=False), np.cov(f2, rowvar=False)
    covmean, _ = linalg.sqrtm(s1 @ s2, disp=False)
    if not np.isfinite(covmean).all():
        eps = np.eye(s1.shape[0]) * 1e-6
        covmean = linalg.sqrtm((s1 + eps) @ (s2 + eps))
    covmean = np.real(covmean)
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean))


def feature_distance(net: FeatureNet, a: np.ndarray, b: np.ndarray) -> float:
    """FD-medsynth between two image sets (use equal sizes when comparing methods)."""
    return frechet_distance(net.features(a), net.features(b))


def pairwise_diversity(images: np.ndarray, n_pairs: int = 200, seed: int = 0) -> float:
    """Mean 1 − SSIM over random distinct pairs (0 = identical images)."""
    n = len(images)
    if n < 2:
        return 0.0
    rng = np.random.default_rng(seed)
    i = rng.integers(0, n, n_pairs)
    j = (i + rng.integers(1, n, n_pairs)) % n
    return float(np.mean(1.0 - ssim(images[i], images[j])))


@dataclass
class NearestResult:
    ssim: np.ndarray  # best SSIM to any reference among the candidates
    ssim_index: np.ndarray
    feat_dist: np.ndarray | None = None  # cosine distance to the feature-nearest reference
    feat_index: np.ndarray | None = None


def nearest_neighbours(queries: np.ndarray, refs: np.ndarray, *, candidates: int = 16, q_feats: np.ndarray | None = None,
                       r_feats: np.ndarray | None = None, exclude_self: bool = False, max_shift: int = 0) -> NearestResult:
    """Nearest reference of each query by SSIM — searched exactly among the ``candidates`` nearest by pixel L2
    and the ``candidates`` nearest in feature space — and by feature cosine distance. ``exclude_self`` skips
    reference ``i`` for query ``i`` (queries = refs, leave-one-out).

    ``max_shift`` > 0 makes the pixel search translation-tolerant: the central crop of each reference (a margin of
    ``max_shift`` pixels removed) is compared with every crop of the query shifted by up to ``max_shift`` pixels in
    each direction; the L2 distance is the minimum over shifts, and the SSIM of a candidate pair is computed at its
    best-L2 shift (so a copied image moved by a few pixels still reaches SSIM ≈ 1)."""
    import torch

    Q, R = np.asarray(queries, dtype=np.float32), np.asarray(refs, dtype=np.float32)
    nq, nr = len(Q), len(R)
    s = int(max_shift)
    if s > 0 and min(Q.shape[-2:]) <= 4 * s:
        raise ValueError(f"max_shift={s} is too large for {Q.shape[-1]}-pixel images")
    H, W = Q.shape[-2:]
    shifts = [(dy, dx) for dy in range(-s, s + 1) for dx in range(-s, s + 1)] if s > 0 else [(0, 0)]

    def q_crop(dy: int, dx: int, idx: Any = slice(None)) -> np.ndarray:
        return Q[idx, s + dy:H - s + dy, s + dx:W - s + dx] if s > 0 else Q[idx]

    Rc = R[:, s:H - s, s:W - s] if s > 0 else R
    r = torch.as_tensor(Rc.reshape(nr, -1))
    d = best_shift = None
    for k, (dy, dx) in enumerate(shifts):
        dk = torch.cdist(torch.as_tensor(np.ascontiguousarray(q_crop(dy, dx)).reshape(nq, -1)), r)
        if d is None:
            d, best_shift = dk, torch.zeros(dk.shape, dtype=torch.long)
        else:
            better = dk < d
            d = torch.where(better, dk, d)
            best_shift[better] = k
    assert d is not None and best_shift is not None
    k = min(candidates, nr - (1 if exclude_self else 0))
    if exclude_self:
        d.fill_diagonal_(float("inf"))
    cand = [torch.topk(d, k, largest=False).indices]
    fd = fi = None
    if q_feats is not None and r_feats is not None:
        qf = torch.nn.functional.normalize(torch.as_tensor(q_feats, dtype=torch.float32), dim=1)
        rf = torch.nn.functional.normalize(torch.as_tensor(r_feats, dtype=torch.float32), dim=1)
        cd = 1.0 - qf @ rf.T
        if exclude_self:
            cd.fill_diagonal_(float("inf"))
        cand.append(torch.topk(cd, k, largest=False).indices)
        v, ix = cd.min(dim=1)
        fd, fi = v.clamp(min=0).numpy(), ix.numpy()
    C = torch.cat(cand, dim=1).numpy()
    qi = np.repeat(np.arange(nq), C.shape[1])
    rj = C.reshape(-1)
    sh = best_shift.numpy()[qi, rj]
    qa = np.empty((len(qi),) + Rc.shape[1:], dtype=np.float32)
    for k2, (dy, dx) in enumerate(shifts):
        m = sh == k2
        if m.any():
            qa[m] = q_crop(dy, dx, qi[m])
    sv = ssim(qa, Rc[rj]).reshape(nq, -1)
    best = sv.argmax(axis=1)
    return NearestResult(ssim=sv[np.arange(nq), best], ssim_index=C[np.arange(nq), best], feat_dist=fd, feat_index=fi)
