"""Procedural chest-radiograph phantoms with controllable findings and paired dual-energy images.

**These images are drawn by a program. They never stand for patients** and carry no patient information. They
exist so that conditioning (does a generator draw the finding it was asked for?) and modality imputation (can a
model recover a missing image from the one a patient has?) can be *measured* against a known ground truth, and
so that tests and demos run with no data at all.

Each case is built in the log-attenuation domain (what a radiograph shows: brighter = more attenuation) as two
additive maps, exactly like dual-energy subtraction radiography separates them:

* **soft tissue**: body wall, mediastinum, heart, diaphragm/abdomen, aerated lungs, and the soft-tissue findings;
* **bone** (high-Z material): spine, posterior ribs, clavicles, humeral heads, and radio-opaque support devices.

The **standard** radiograph is their sum, ``standard = soft_tissue + bone`` (same linear units, pixel values in
``[0, 1]``; the only deviation is clipping at 1, which the default geometry never reaches), so a dual-energy pair
is a real paired second modality: "bone suppression" (standard → soft tissue) is the imputation task a hospital
without dual-energy equipment would want.

Findings (labels use the IU X-ray / CheXpert vocabulary):

* ``Cardiomegaly`` — cardiothoracic ratio 0.57–0.67 (normal cases 0.37–0.47);
* ``Opacity`` — a lobar consolidation (right/left upper or lower lobe) with cloudy texture;
* ``Pleural Effusion`` — fluid at a lung base with a lateral meniscus and a blunted costophrenic angle;
* ``Nodule`` — a round soft-tissue nodule in a lung field;
* ``Support Device`` — a central venous catheter and/or a nasogastric tube (radio-opaque: in the bone image).

Everything is seeded: ``PhantomGenerator(seed=s).case(i)`` is the same image on every machine.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["FINDINGS", "MODALITIES", "PhantomCase", "PhantomGenerator", "render", "report_text"]

FINDINGS: tuple[str, ...] = ("Cardiomegaly", "Opacity", "Pleural Effusion", "Nodule", "Support Device")
MODALITIES: tuple[str, ...] = ("standard", "soft_tissue", "bone")
_DEFAULT_PREVALENCE = {f: 0.3 for f in FINDINGS}
#: log-attenuation units mapped to pixel value 1.0 (chosen so that the default geometry never clips)
A_MAX = 2.4


@dataclass
class PhantomCase:
    """One drawn case: images by modality (float32 ``[size, size]`` in ``[0, 1]``), labels, a short report and the
    geometry it was drawn with."""

    index: int
    images: dict[str, np.ndarray]
    labels: list[str]
    report: str
    params: dict[str, Any] = field(default_factory=dict)


def _grid(size: int, supersample: int) -> tuple[np.ndarray, np.ndarray]:
    n = size * supersample
    c = (np.arange(n, dtype=np.float32) + 0.5) / n * 2.0 - 1.0
    return np.meshgrid(c, c, indexing="xy")  # x: left→right, y: top→bottom


def _soft(d: np.ndarray, edge: float) -> np.ndarray:
    """Smooth inside-indicator of a signed distance-like field ``d`` (>0 inside)."""
    return (0.5 * (1.0 + np.tanh(d / max(edge, 1e-6)))).astype(np.float32)


def _ellipse(x: np.ndarray, y: np.ndarray, cx: float, cy: float, ax: float, ay: float, edge: float) -> np.ndarray:
    r = np.sqrt(((x - cx) / ax) ** 2 + ((y - cy) / ay) ** 2)
    return _soft((1.0 - r) * min(ax, ay), edge)


def _band_along(x: np.ndarray, y: np.ndarray, pts: np.ndarray, half_width: float, edge: float) -> np.ndarray:
    """A tube of ``half_width`` around the polyline ``pts`` (k×2)."""
    dmin = np.full(x.shape, np.inf, dtype=np.float32)
    for (x0, y0), (x1, y1) in zip(pts[:-1], pts[1:], strict=True):
        vx, vy = x1 - x0, y1 - y0
        L2 = vx * vx + vy * vy + 1e-12
        t = np.clip(((x - x0) * vx + (y - y0) * vy) / L2, 0.0, 1.0)
        d = np.sqrt((x - x0 - t * vx) ** 2 + (y - y0 - t * vy) ** 2)
        dmin = np.minimum(dmin, d)
    return _soft(half_width - dmin, edge)


def _bezier(p0: tuple[float, float], p1: tuple[float, float], p2: tuple[float, float], p3: tuple[float, float], n: int = 24) -> np.ndarray:
    t = np.linspace(0.0, 1.0, n)[:, None]
    P = [np.asarray(p, dtype=np.float32) for p in (p0, p1, p2, p3)]
    return ((1 - t) ** 3) * P[0] + 3 * ((1 - t) ** 2) * t * P[1] + 3 * (1 - t) * (t**2) * P[2] + (t**3) * P[3]


def _smooth_noise(rng: np.random.Generator, shape: tuple[int, int], scale: int) -> np.ndarray:
    """Band-limited noise in [0, 1] (bilinear upsampling of a coarse random grid)."""
    h, w = shape
    gh, gw = max(2, h // scale + 2), max(2, w // scale + 2)
    g = rng.random((gh, gw)).astype(np.float32)
    yi = np.linspace(0, gh - 1.001, h)
    xi = np.linspace(0, gw - 1.001, w)
    y0, x0 = np.floor(yi).astype(int), np.floor(xi).astype(int)
    fy, fx = (yi - y0)[:, None], (xi - x0)[None, :]
    a = g[y0][:, x0] * (1 - fx) + g[y0][:, x0 + 1] * fx
    b = g[y0 + 1][:, x0] * (1 - fx) + g[y0 + 1][:, x0 + 1] * fx
    return (a * (1 - fy) + b * fy).astype(np.float32)


def _downsample(a: np.ndarray, k: int) -> np.ndarray:
    if k == 1:
        return a
    h, w = a.shape
    return a.reshape(h // k, k, w // k, k).mean(axis=(1, 3))


def render(size: int, findings: set[str] | list[str], rng: np.random.Generator, *, noise: float = 0.006,
           supersample: int = 2) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Draw one case with exactly the given findings. Returns ``({modality: image}, geometry)``."""
    unknown = set(findings) - set(FINDINGS)
    if unknown:
        raise ValueError(f"unknown phantom finding(s) {sorted(unknown)}; known: {', '.join(FINDINGS)}")
    fset = set(findings)
    x, y = _grid(size, supersample)
    px = 2.0 / (size * supersample)  # one (super)pixel in normalised units
    edge = 1.2 * px
    u = rng.uniform

    # -- anatomy ------------------------------------------------------------------------------------------------
    cx = float(u(-0.04, 0.04))
    W = float(u(0.70, 0.80))  # half thoracic width (inner rib margin)
    y_apex = float(u(-0.78, -0.68))
    y_dia_r, y_dia_l = float(u(0.36, 0.46)), 0.0
    y_dia_l = y_dia_r + float(u(0.02, 0.07))  # left hemidiaphragm lower than the right
    tilt = float(u(-0.03, 0.03))
    # bone and acquisition draws come before any finding, so a case drawn with and without a finding shares its anatomy
    vert_phase = float(u(0, 0.13))
    rib_phase = float(u(-0.02, 0.03))
    rib_hw = 0.024 + 0.004 * float(u())
    gain = float(u(0.92, 1.08))
    yy = y + tilt * x
    ax = np.abs(x - cx)
    # torso: near-vertical flanks, sloping shoulders, the neck at the top centre
    flank = W + 0.17 - 0.06 * (yy - 0.2) ** 2
    shoulder = y_apex - 0.16 + 0.10 * np.clip((ax - 0.18) / W, 0.0, None) ** 2
    top = np.where(ax < 0.2, -1.1, shoulder)
    body = _soft(flank - ax, 3 * edge) * _soft(yy - top, 3 * edge)
    thickness = body * (0.62 + 0.38 * np.sqrt(np.clip(1.0 - ((x - cx) / (W + 0.2)) ** 2, 0.0, 1.0)))

    lungs: dict[str, np.ndarray] = {}
    lung_geo: dict[str, dict[str, float]] = {}
    for side, sgn, y_dia in (("right", -1.0, y_dia_r), ("left", 1.0, y_dia_l)):
        # patient's right lung is on the image's left (PA view)
        x_med = cx + sgn * float(u(0.10, 0.14))
        x_lat = cx + sgn * W
        xc = 0.5 * (x_med + x_lat)
        half = 0.5 * abs(x_lat - x_med)
        yc = 0.5 * (y_apex + y_dia) + 0.05
        ay = 0.5 * (y_dia - y_apex) + 0.12
        shape = _ellipse(x, yy, xc, yc, half * 1.08, ay, edge)
        # diaphragm dome: highest near the middle of the hemithorax, lower at the costophrenic angle
        dome = y_dia + 0.10 * ((x - xc) / half) ** 2
        below = _soft(dome - yy, edge)
        medial = _soft(sgn * (x - x_med), edge)
        lungs[side] = shape * below * medial
        lung_geo[side] = {"x_med": x_med, "x_lat": x_lat, "xc": xc, "half": half, "y_dia": y_dia, "yc": yc}
    lung = np.clip(lungs["right"] + lungs["left"], 0.0, 1.0)

    soft = thickness.copy()
    soft -= 0.62 * lung * thickness  # aerated lung
    # lung vessels / markings: faint band-limited texture inside the lungs
    soft += lung * 0.05 * (_smooth_noise(rng, x.shape, max(2, supersample * size // 16)) - 0.5)

    # heart: cardiothoracic ratio = heart width / thoracic width
    ctr = float(u(0.57, 0.67)) if "Cardiomegaly" in fset else float(u(0.37, 0.47))
    heart_w = ctr * 2 * W
    hx = cx + 0.16 * heart_w  # shifted to the patient's left (image right)
    y_dm = 0.5 * (y_dia_r + y_dia_l)
    hy = y_dm - 0.06
    heart = _ellipse(x, yy, hx, hy, heart_w / 2, 0.27 + 0.3 * (ctr - 0.43), 2 * edge)
    # the heart sits on the diaphragm (broad base): cut below it
    heart *= _soft(y_dm + 0.05 - yy, 2 * edge)
    soft += 0.55 * heart * lung + 0.10 * heart * (1 - lung)
    # aortic knob
    soft += 0.35 * _ellipse(x, yy, cx + 0.12, y_apex + 0.34, 0.07, 0.06, 2 * edge) * lung

    params: dict[str, Any] = {"ctr": round(ctr, 4), "thoracic_half_width": round(W, 4), "center_x": round(cx, 4)}

    if "Opacity" in fset:
        side = "right" if u() < 0.5 else "left"
        lobe = "upper" if u() < 0.5 else "lower"
        g = lung_geo[side]
        y_fis = g["yc"] + float(u(-0.12, 0.02))
        sel = _soft(y_fis - yy, 3 * edge) if lobe == "upper" else _soft(yy - y_fis, 3 * edge)
        # a lateral-medial extent (most of the lobe)
        lat = _soft(1.0 - np.abs(x - g["xc"]) / (g["half"] * float(u(0.85, 1.05))), 4 * edge)
        cloud = 0.55 + 0.45 * _smooth_noise(rng, x.shape, max(2, supersample * size // 12))
        region = lungs[side] * sel * lat * cloud
        soft += float(u(0.40, 0.55)) * region * thickness
        params["opacity"] = {"side": side, "lobe": lobe}
    if "Pleural Effusion" in fset:
        side = "right" if u() < 0.5 else "left"
        g = lung_geo[side]
        h = float(u(0.28, 0.45))
        rel = np.clip(np.abs(x - g["x_med"]) / (2 * g["half"]), 0.0, 1.2)
        level = g["y_dia"] + 0.06 - h + 0.55 * h * (1 - rel) ** 2  # meniscus: the fluid rises laterally
        region = _soft(yy - level, 2 * edge) * _ellipse(x, yy, g["xc"], g["yc"], g["half"] * 1.15, 0.5 * (g["y_dia"] - y_apex) + 0.25, edge)
        # lateral of the mediastinal border only
        region = np.clip(region * _soft((x - g["x_med"]) * (1.0 if side == "left" else -1.0), edge), 0.0, 1.0)
        # fluid replaces air (and hides the diaphragm contour below the meniscus)
        soft += region * np.clip(thickness - soft + 0.05, 0.0, None) * 0.9
        params["effusion"] = {"side": side, "height": round(h, 3)}
    if "Nodule" in fset:
        side = "right" if u() < 0.5 else "left"
        g = lung_geo[side]
        for _ in range(50):
            nx = g["xc"] + float(u(-0.6, 0.6)) * g["half"]
            ny = float(u(y_apex + 0.18, g["y_dia"] - 0.12))
            # keep it clear of the heart so that it is visible on a 64 px image
            if abs(nx - hx) > heart_w / 2 + 0.08 or ny < hy - 0.35:
                break
        r = float(u(0.055, 0.08))
        nod = _ellipse(x, yy, nx, ny, r, r * float(u(0.85, 1.15)), 1.5 * edge)
        soft += float(u(0.42, 0.55)) * nod
        params["nodule"] = {"side": side, "radius": round(r, 4)}

    # -- bone ---------------------------------------------------------------------------------------------------
    bone = np.zeros_like(x)
    spine = _soft(0.085 - np.abs(x - cx), 1.5 * edge) * _soft(0.98 - yy, edge)
    vertebrae = 0.78 + 0.22 * np.cos(2 * math.pi * (yy - vert_phase) / 0.13)
    bone += 0.30 * spine * vertebrae
    for sgn in (-1.0, 1.0):
        for k in range(9):
            y0 = y_apex - 0.02 + rib_phase + k * 0.125
            s = np.clip(sgn * (x - cx) / (W + 0.05), -0.2, 1.2)
            yc = y0 + 0.10 * s - 0.02 + 0.10 * s**2  # posterior rib: rises from the spine then sweeps down laterally
            d = rib_hw - np.abs(yy - yc)
            band = _soft(d, edge) * _soft(s - 0.08, 2 * edge) * _soft(1.04 - s, 2 * edge)
            bone += 0.15 * band * body
    for sgn in (-1.0, 1.0):
        pts = np.array([[cx + sgn * 0.08, y_apex + 0.08], [cx + sgn * 0.35, y_apex + 0.04], [cx + sgn * 0.62, y_apex - 0.04]], dtype=np.float32)
        bone += 0.26 * _band_along(x, yy, pts, 0.032, edge)
        bone += 0.22 * _ellipse(x, yy, cx + sgn * (W + 0.12), y_apex - 0.02, 0.14, 0.16, 2 * edge) * body
    devices: list[str] = []
    if "Support Device" in fset:
        kinds = ["cvc", "ng"] if u() < 0.3 else (["cvc"] if u() < 0.6 else ["ng"])
        for kd in kinds:
            if kd == "cvc":
                sgn = -1.0 if u() < 0.7 else 1.0  # right internal jugular / subclavian is the usual route
                pts = _bezier((cx + sgn * 0.45, -0.98), (cx + sgn * 0.32, y_apex + 0.05), (cx + sgn * 0.06, y_apex + 0.18),
                              (cx - 0.03, hy - 0.12 + float(u(-0.04, 0.06))))
            else:
                pts = _bezier((cx + 0.01, -1.0), (cx - 0.02, -0.2), (cx + 0.02, 0.2), (cx + 0.26 + float(u(-0.04, 0.04)), y_dia_l + 0.12))
            bone += 0.55 * _band_along(x, yy, pts, 0.020, 0.8 * edge)
            devices.append(kd)
        params["devices"] = devices

    # -- acquisition: exposure variation + quantum noise (independent in the two maps, so standard = sum exactly) --
    soft_i = _downsample(soft * gain, supersample) / A_MAX
    bone_i = _downsample(bone * gain, supersample) / A_MAX
    if noise > 0:
        soft_i = soft_i + rng.normal(0.0, noise, soft_i.shape).astype(np.float32)
        bone_i = bone_i + rng.normal(0.0, noise * 0.5, bone_i.shape).astype(np.float32) * (bone_i > 1e-3)
    soft_i = np.clip(soft_i, 0.0, 1.0).astype(np.float32)
    bone_i = np.clip(bone_i, 0.0, 1.0).astype(np.float32)
    std_i = np.clip(soft_i + bone_i, 0.0, 1.0).astype(np.float32)
    return {"standard": std_i, "soft_tissue": soft_i, "bone": bone_i}, params


def report_text(labels: list[str], params: dict[str, Any], rng: np.random.Generator) -> str:
    """A short templated report of the drawn findings (for report-embedding conditioning demos)."""
    parts = []
    if "Cardiomegaly" in labels:
        parts.append(rng.choice(["The cardiac silhouette is enlarged.", "Cardiomegaly.", "Enlarged heart size."]))
    else:
        parts.append(rng.choice(["Heart size is normal.", "Normal cardiac silhouette.", "The heart is not enlarged."]))
    if "Opacity" in labels:
        o = params.get("opacity", {})
        parts.append(f"{o.get('side', 'right').capitalize()} {o.get('lobe', 'lower')} lobe opacity, consistent with consolidation.")
    if "Pleural Effusion" in labels:
        parts.append(f"Small {params.get('effusion', {}).get('side', 'right')} pleural effusion.")
    if "Nodule" in labels:
        parts.append(f"Rounded nodule in the {params.get('nodule', {}).get('side', 'right')} lung.")
    if "Support Device" in labels:
        d = params.get("devices", [])
        parts.append(" ".join(["Central venous catheter tip in the SVC." if k == "cvc" else "Enteric tube courses below the diaphragm." for k in d]))
    if not set(labels) - {"Cardiomegaly"} and "Cardiomegaly" not in labels:
        parts.append(rng.choice(["Lungs are clear.", "No acute cardiopulmonary abnormality.", "No focal consolidation or effusion."]))
    return " ".join(parts)


class PhantomGenerator:
    """Seeded generator of phantom cases.

    ``prevalence`` gives each finding's probability (findings are drawn independently). ``case(i)`` depends only
    on ``(seed, i)``, so any subset of cases can be redrawn exactly.
    """

    def __init__(self, size: int = 64, seed: int = 0, prevalence: dict[str, float] | None = None, noise: float = 0.006,
                 supersample: int = 2):
        if size < 16:
            raise ValueError("phantom size must be at least 16 pixels")
        prev = dict(_DEFAULT_PREVALENCE)
        for k, v in (prevalence or {}).items():
            if k not in FINDINGS:
                raise ValueError(f"unknown phantom finding {k!r} in prevalence; known: {', '.join(FINDINGS)}")
            if not 0.0 <= float(v) <= 1.0:
                raise ValueError(f"prevalence of {k!r} must be in [0, 1]")
            prev[k] = float(v)
        self.size, self.seed, self.prevalence, self.noise, self.supersample = size, seed, prev, noise, supersample

    def _rng(self, i: int, salt: int = 0) -> np.random.Generator:
        return np.random.default_rng([self.seed, i, salt])

    def labels_for(self, i: int) -> list[str]:
        rng = self._rng(i, 1)
        return [f for f in FINDINGS if rng.random() < self.prevalence[f]]

    def case(self, i: int, findings: list[str] | None = None) -> PhantomCase:
        labels = self.labels_for(i) if findings is None else [f for f in FINDINGS if f in set(findings)]
        rng = self._rng(i, 2)
        images, params = render(self.size, labels, rng, noise=self.noise, supersample=self.supersample)
        return PhantomCase(index=i, images=images, labels=labels, report=report_text(labels, params, self._rng(i, 3)), params=params)

    def cases(self, n: int, start: int = 0) -> list[PhantomCase]:
        return [self.case(i) for i in range(start, start + n)]
