"""Self-contained HTML report (no JavaScript, no external requests; plots are inline SVG)."""

from __future__ import annotations

import html
import json
import math
from typing import Any

__all__ = ["render_html", "svg_histogram", "svg_bars", "svg_lines"]

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;max-width:1100px;color:#1d2430;line-height:1.4}
h1{font-size:1.6rem;margin-bottom:.2rem}h2{border-bottom:2px solid #e3e7ee;padding-bottom:.2rem;margin-top:2rem}
h3{margin-bottom:.3rem}table{border-collapse:collapse;width:100%;margin:.5rem 0 1rem;font-size:.9rem}
th,td{border:1px solid #dfe3ea;padding:.3rem .5rem;text-align:left;vertical-align:top}th{background:#f4f6f9}
.how{color:#5b6575;font-size:.85rem}.pass{background:#e5f6ea;color:#14532d}.fail{background:#fde8e8;color:#7f1d1d}
.not_powered{background:#fef3c7;color:#78350f}.skipped{background:#eceff3;color:#374151}.summary{border:2px solid #dfe3ea;padding:.6rem 1rem;border-radius:.4rem}
.badge{display:inline-block;padding:.25rem .6rem;border-radius:.3rem;font-weight:600}.muted{color:#6b7280}
figure{margin:.5rem 0 1.2rem}figcaption{font-size:.85rem;color:#4b5563}pre{white-space:pre-wrap;font-size:.75rem;background:#f7f8fa;padding:.5rem}
.plots{display:flex;flex-wrap:wrap;gap:1rem}.plots figure{flex:1 1 480px}
"""

_COLORS = ["#2563eb", "#f97316", "#16a34a", "#9333ea", "#dc2626"]


def _e(x: Any) -> str:
    return html.escape(str(x), quote=True)


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, (dict, list)):
        s = json.dumps(v, default=str)
        return s if len(s) < 400 else s[:400] + " …"
    return str(v)


def svg_histogram(series: dict[str, list[float]], title: str, xlabel: str, bins: int = 30, width: int = 520, height: int = 260) -> str:
    vals = [v for s in series.values() for v in s if v is not None and math.isfinite(v)]
    if not vals:
        return ""
    lo, hi = min(vals), max(vals)
    if hi <= lo:
        hi = lo + 1e-9
    ml, mb, mt, mr = 48, 36, 24, 10
    pw, ph = width - ml - mr, height - mt - mb
    hists = {}
    for k, s in series.items():
        h = [0] * bins
        for v in s:
            if v is None or not math.isfinite(v):
                continue
            i = min(int((v - lo) / (hi - lo) * bins), bins - 1)
            h[i] += 1
        n = max(len(s), 1)
        hists[k] = [c / n for c in h]
    ymax = max(max(h) for h in hists.values()) or 1
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" aria-label="{_e(title)}">',
             f'<rect x="0" y="0" width="{width}" height="{height}" fill="white"/>',
             f'<text x="{width / 2}" y="16" text-anchor="middle" font-size="13" font-weight="600">{_e(title)}</text>']
    bw = pw / bins
    for si, (k, h) in enumerate(hists.items()):
        col = _COLORS[si % len(_COLORS)]
        for i, c in enumerate(h):
            if c <= 0:
                continue
            bh = c / ymax * ph
            parts.append(f'<rect class="bar" x="{ml + i * bw:.1f}" y="{mt + ph - bh:.1f}" width="{max(bw - 1, 1):.1f}" height="{bh:.1f}" fill="{col}" fill-opacity="0.55"/>')
        parts.append(f'<rect x="{ml + 8 + si * 130}" y="{mt + 2}" width="10" height="10" fill="{col}" fill-opacity="0.7"/>'
                     f'<text x="{ml + 22 + si * 130}" y="{mt + 11}" font-size="11">{_e(k)} (n={len(series[k])})</text>')
    parts.append(f'<line x1="{ml}" y1="{mt + ph}" x2="{ml + pw}" y2="{mt + ph}" stroke="#333"/><line x1="{ml}" y1="{mt}" x2="{ml}" y2="{mt + ph}" stroke="#333"/>')
    for t in range(5):
        xv = lo + (hi - lo) * t / 4
        parts.append(f'<text x="{ml + pw * t / 4:.1f}" y="{mt + ph + 14}" font-size="10" text-anchor="middle">{xv:.3g}</text>')
    parts.append(f'<text x="{ml + pw / 2}" y="{height - 4}" font-size="11" text-anchor="middle">{_e(xlabel)}</text>')
    parts.append(f'<text x="12" y="{mt + ph / 2}" font-size="11" transform="rotate(-90 12 {mt + ph / 2})" text-anchor="middle">share of records</text>')
    parts.append("</svg>")
    return "".join(parts)


def svg_bars(groups: dict[str, dict[str, float]], title: str, width: int = 520, bar_h: int = 16) -> str:
    cats = sorted({c for g in groups.values() for c in g}, key=lambda c: -max(g.get(c, 0) for g in groups.values()))[:25]
    if not cats:
        return ""
    ng = len(groups)
    ml, mt = 170, 30
    height = mt + len(cats) * (bar_h * ng + 6) + 20
    vmax = max(v for g in groups.values() for v in g.values()) or 1
    pw = width - ml - 50
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" aria-label="{_e(title)}">',
             f'<rect x="0" y="0" width="{width}" height="{height}" fill="white"/>',
             f'<text x="{width / 2}" y="16" text-anchor="middle" font-size="13" font-weight="600">{_e(title)}</text>']
    for gi, name in enumerate(groups):
        parts.append(f'<rect x="{ml + gi * 120}" y="20" width="10" height="8" fill="{_COLORS[gi % 5]}"/><text x="{ml + 14 + gi * 120}" y="28" font-size="10">{_e(name)}</text>')
    y = mt + 6
    for c in cats:
        parts.append(f'<text x="{ml - 6}" y="{y + bar_h * ng / 2 + 4:.1f}" font-size="11" text-anchor="end">{_e(c[:26])}</text>')
        for gi, g in enumerate(groups.values()):
            v = g.get(c, 0)
            w = v / vmax * pw
            parts.append(f'<rect class="bar" x="{ml}" y="{y + gi * bar_h}" width="{max(w, 0.5):.1f}" height="{bar_h - 2}" fill="{_COLORS[gi % 5]}"/>'
                         f'<text x="{ml + w + 4:.1f}" y="{y + gi * bar_h + bar_h - 5}" font-size="10">{v:.3g}</text>')
        y += bar_h * ng + 6
    parts.append("</svg>")
    return "".join(parts)


def svg_lines(series: dict[str, tuple[list[float], list[float]]], title: str, xlabel: str, ylabel: str,
              diagonal: bool = False, logx: bool = False, width: int = 480, height: int = 330) -> str:
    """Line plot of named (x, y) series (ROC curves, loss curves…)."""
    pts_all = [(x, y) for xs, ys in series.values() for x, y in zip(xs, ys, strict=False)
               if x is not None and y is not None and math.isfinite(x) and math.isfinite(y) and (not logx or x > 0)]
    if not pts_all:
        return ""
    tx = (lambda v: math.log10(v)) if logx else (lambda v: v)
    xlo, xhi = min(tx(p[0]) for p in pts_all), max(tx(p[0]) for p in pts_all)
    ylo, yhi = min(p[1] for p in pts_all), max(p[1] for p in pts_all)
    if diagonal:
        xlo, xhi, ylo, yhi = min(xlo, 0.0), max(xhi, 1.0), 0.0, 1.0
    xhi, yhi = (xhi if xhi > xlo else xlo + 1e-9), (yhi if yhi > ylo else ylo + 1e-9)
    ml, mb, mt, mr = 52, 40, 26, 12
    pw, ph = width - ml - mr, height - mt - mb

    def sx(v: float) -> float:
        return ml + (tx(v) - xlo) / (xhi - xlo) * pw

    def sy(v: float) -> float:
        return mt + ph - (v - ylo) / (yhi - ylo) * ph

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" aria-label="{_e(title)}">',
             f'<rect x="0" y="0" width="{width}" height="{height}" fill="white"/>',
             f'<text x="{width / 2}" y="16" text-anchor="middle" font-size="13" font-weight="600">{_e(title)}</text>',
             f'<line x1="{ml}" y1="{mt + ph}" x2="{ml + pw}" y2="{mt + ph}" stroke="#333"/><line x1="{ml}" y1="{mt}" x2="{ml}" y2="{mt + ph}" stroke="#333"/>']
    if diagonal:
        parts.append(f'<line x1="{ml}" y1="{mt + ph}" x2="{ml + pw}" y2="{mt}" stroke="#999" stroke-dasharray="4"/>')
    for si, (k, (xs, ys)) in enumerate(series.items()):
        col = _COLORS[si % len(_COLORS)]
        pts = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in zip(xs, ys, strict=False)
                       if x is not None and y is not None and math.isfinite(x) and math.isfinite(y) and (not logx or x > 0))
        parts.append(f'<polyline class="bar line" points="{pts}" fill="none" stroke="{col}" stroke-width="2"/>')
        parts.append(f'<rect x="{ml + 8}" y="{mt + 4 + si * 14}" width="10" height="10" fill="{col}"/>'
                     f'<text x="{ml + 22}" y="{mt + 13 + si * 14}" font-size="11">{_e(k)}</text>')
    for t in range(5):
        xv = xlo + (xhi - xlo) * t / 4
        lab = f"{10 ** xv:.2g}" if logx else f"{xv:.3g}"
        parts.append(f'<text x="{ml + pw * t / 4:.1f}" y="{mt + ph + 14}" font-size="10" text-anchor="middle">{lab}</text>')
        yv = ylo + (yhi - ylo) * t / 4
        parts.append(f'<text x="{ml - 4}" y="{mt + ph - ph * t / 4 + 3:.1f}" font-size="10" text-anchor="end">{yv:.3g}</text>')
    parts.append(f'<text x="{ml + pw / 2}" y="{height - 6}" font-size="11" text-anchor="middle">{_e(xlabel)}</text>')
    parts.append(f'<text x="12" y="{mt + ph / 2}" font-size="11" transform="rotate(-90 12 {mt + ph / 2})" text-anchor="middle">{_e(ylabel)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _generic_plot(obj: dict[str, Any]) -> str:
    """A section of the form ``{"plot": {...}, "caption": "..."}`` (any step may write one):

    - ``{"kind": "histogram", "title", "xlabel", "series": {name: [values]}}``
    - ``{"kind": "bars", "title", "groups": {group: {label: value}}}``
    - ``{"kind": "lines", "title", "xlabel", "ylabel", "series": {name: {"x": [...], "y": [...]}}, "diagonal": bool, "logx": bool}``
    """
    p = obj.get("plot") or {}
    kind, title, cap = p.get("kind"), str(p.get("title", "")), str(obj.get("caption", ""))
    if kind == "histogram":
        return _fig(svg_histogram(p.get("series", {}), title, str(p.get("xlabel", "")), bins=int(p.get("bins", 30))), cap)
    if kind == "bars":
        return _fig(svg_bars(p.get("groups", {}), title), cap)
    if kind == "lines":
        ser = {k: (list(v.get("x", [])), list(v.get("y", []))) for k, v in p.get("series", {}).items()}
        return _fig(svg_lines(ser, title, str(p.get("xlabel", "")), str(p.get("ylabel", "")), bool(p.get("diagonal")),
                              bool(p.get("logx"))), cap)
    return ""


def _plots(key: str, obj: Any) -> str:
    """Plots for the sections that medsynth steps write."""
    if isinstance(obj, dict) and isinstance(obj.get("plot"), dict):
        return _generic_plot(obj)
    if key.endswith("dcr_hist") and isinstance(obj, dict):
        return _fig(svg_histogram(obj, "Distance to closest private record", "cosine distance (MiniLM)"),
                    "DCR of synthetic records vs unseen real (holdout) records. Synthetic mass left of the holdout mass would indicate memorisation.")
    if key.endswith("lcs_hist") and isinstance(obj, dict):
        return _fig(svg_histogram(obj, "Longest passage shared with a private record", "characters"), "Longest common substring with the most overlapping private records.")
    if key in ("phi_counts",) and isinstance(obj, dict):
        return _fig(svg_bars({"PHI spans": obj}, "PHI detected per type"), "Counts only; the strings stay in the run directory.")
    if key == "label_distribution" and isinstance(obj, dict):
        return _fig(svg_bars(obj, "Label distribution (share of records)"), "Synthetic label prior vs the seeds' prior.")
    if key.endswith("label_counts") and isinstance(obj, dict):
        return _fig(svg_bars({"records": obj}, "Labels in the source corpus"), "")
    if key.endswith("roc") and isinstance(obj, dict) and "fpr" in obj:
        series = {k: v for k, v in obj.items() if k in ("fpr", "tpr")}
        pts = " ".join(f"{60 + 400 * f:.1f},{300 - 260 * t:.1f}" for f, t in zip(series["fpr"], series["tpr"], strict=False))
        svg = (f'<svg xmlns="http://www.w3.org/2000/svg" width="480" height="330"><rect width="480" height="330" fill="white"/>'
               f'<polyline class="bar" points="{pts}" fill="none" stroke="#2563eb" stroke-width="2"/><line x1="60" y1="300" x2="460" y2="40" stroke="#999" stroke-dasharray="4"/>'
               f'<text x="240" y="325" font-size="11" text-anchor="middle">false positive rate</text><text x="240" y="20" font-size="13" text-anchor="middle">Membership inference ROC</text></svg>')
        return _fig(svg, "")
    return ""


def _fig(svg: str, caption: str) -> str:
    if not svg:
        return ""
    return f"<figure>{svg}<figcaption>{_e(caption)}</figcaption></figure>"


_VERDICT_WORDS = {"pass": "pass", "fail": "FAIL", "not_powered": "not powered (no release claim)", "skipped": "skipped"}


def _summary(report: dict[str, Any], audit: dict[str, Any]) -> str:
    """The one-screen summary for the privacy officer: the verdict in words, what was checked, what was not."""
    audits = audit.get("audits", {})
    ran = [n for n, a in audits.items() if a["verdict"] in ("pass", "fail", "not_powered")]
    not_run = [n for n, a in audits.items() if a["verdict"] == "skipped"]
    released = next((f["value"] for s in report.get("steps", []) for f in s.get("figures", []) if f.get("name") == "records_released"), None)
    v = audit["verdict"]
    meaning = {"pass": "Every audit the policy requires ran with enough data to detect what it looks for, and none found anything over the policy's limits.",
               "fail": "At least one audit found something over the policy's limits. Do not release without review of the quarantined records.",
               "not_powered": "No audit failed, but at least one required audit could not support a release claim (see below). "
                              "The absence of findings is NOT evidence of safety for those checks."}.get(v, "")
    parts = [f"<div class='summary'><h2>Summary</h2><p><b>Release verdict: <span class='badge {_e(v)}'>{_e(_VERDICT_WORDS.get(v, v))}</span></b> {_e(meaning)}</p>",
             f"<p>Released: {_e(released if released is not None else '?')} synthetic records. Checked: {_e(', '.join(ran) or 'nothing')}. "
             f"Not run: {_e(', '.join(not_run) or 'none')}. Required by the policy: {_e(', '.join(audit.get('required', [])) or '—')}.</p>"]
    if audit.get("exceptions"):
        parts.append("<p>Exceptions:</p><ul>" + "".join(f"<li>{_e(x)}</li>" for x in audit["exceptions"]) + "</ul>")
    caveats = [f"{n}: {c}" for n, a in audits.items() for c in a.get("caveats", [])]
    if caveats:
        parts.append("<p>Caveats:</p><ul>" + "".join(f"<li>{_e(c)}</li>" for c in caveats) + "</ul>")
    parts.append("<p class='how'>Not checked by any audit: re-identification by linking with outside data sources; PHI the scrubber and the "
                 "tagger both missed in the private records is invisible to the replay audit.</p></div>")
    return "".join(parts)


_MODEL_WORDS = {"useful": "useful", "not_useful": "NOT USEFUL", "not_assessed": "not assessed"}


def _model_verdicts(report: dict[str, Any]) -> str:
    """Each trained model's verdict against its prior baseline, at the top: a model no better than the label
    frequencies is said to be so before any of its figures."""
    rows = [(s.get("name"), kind, v) for s in report.get("steps", []) if isinstance(s.get("sections"), dict)
            for kind, v in (s["sections"].get("model_verdicts") or {}).items() if isinstance(v, dict)]
    if not rows:
        return ""
    bad = [f"{step}/{kind}" for step, kind, v in rows if v.get("verdict") != "useful"]
    head = (f"<p><b>{len(bad)} of {len(rows)} trained model(s) are not shown to be better than predicting the label frequencies: "
            f"{_e(', '.join(bad))}.</b> Their figures below should not be read as a useful result.</p>" if bad else
            f"<p>Every trained model ({len(rows)}) beats predicting the label frequencies (95 % bootstrap interval of the AUROC gain above 0).</p>")
    table = "".join(f"<tr><td>{_e(step)}/{_e(kind)}</td><td class='{'pass' if v.get('verdict') == 'useful' else 'fail'}'>"
                    f"{_e(_MODEL_WORDS.get(v.get('verdict'), v.get('verdict')))}</td><td>{'DP-SGD' if v.get('dp') else 'no DP'}</td>"
                    f"<td class='how'>{_e(v.get('reason'))}</td></tr>" for step, kind, v in rows)
    return ("<div class='summary'><h2>Trained models</h2>" + head + "<table><tr><th>model</th><th>verdict</th><th>training</th>"
            "<th>why</th></tr>" + table + "</table></div>")


def render_html(report: dict[str, Any]) -> str:
    status = report.get("status", "?")
    audit = None
    for s in report.get("steps", []):
        if "audit_summary" in s.get("sections", {}):
            audit = s["sections"]["audit_summary"]
    out = ["<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
           "<meta http-equiv='Content-Security-Policy' content=\"default-src 'none'; style-src 'unsafe-inline'; img-src data:\">",
           f"<title>medsynth report — {_e(report.get('recipe'))} {_e(report.get('run_id'))}</title><style>{_CSS}</style></head><body>",
           f"<h1>medsynth report: {_e(report.get('recipe'))}</h1>",
           f"<p class='muted'>run <code>{_e(report.get('run_id'))}</code> · {_e(report.get('created_at'))} → {_e(report.get('finished_at'))} · "
           f"{_e(report.get('seconds'))} s · medsynth {_e(report.get('medsynth_version'))}</p>",
           f"<p><span class='badge {'pass' if status == 'completed' else 'fail'}'>run {_e(status)}</span> "]
    if audit:
        out.append(f"<span class='badge {_e(audit['verdict'])}'>privacy gate: {_e(_VERDICT_WORDS.get(audit['verdict'], audit['verdict']))}</span>")
    out.append("</p>")
    if audit:
        out.append(_summary(report, audit))
    out.append(_model_verdicts(report))
    if report.get("description"):
        out.append(f"<p>{_e(report['description'])}</p>")
    if report.get("error"):
        out.append(f"<h2>Error</h2><pre>{_e(report['error'].get('type'))}: {_e(report['error'].get('message'))}</pre>")
    if audit:
        out.append("<h2>Privacy audit</h2>")
        out.append("<table><tr><th>audit</th><th>verdict</th><th>why</th><th>records flagged</th><th>protects against (policy)</th></tr>")
        for name, a in audit["audits"].items():
            why = a.get("reason") or "; ".join(a.get("reasons", [])) or "—"
            cav = "".join(f"<br><span class='how'>caveat: {_e(c)}</span>" for c in a.get("caveats", []))
            out.append(f"<tr><td>{_e(name)}</td><td class='{_e(a['verdict'])}'>{_e(a['verdict'])}</td><td>{_e(why)}{cav}</td><td>{_e(a['flagged'])}</td>"
                       f"<td class='how'>{_e(audit.get('protects', {}).get(name, '—'))}</td></tr>")
        out.append(f"</table><p class='how'>Policy: {_e(audit.get('policy'))}. Verdicts: pass = ran, had the power to detect, nothing over the limits; "
                   "fail = over a limit; not_powered = ran but the data cannot support the claim; skipped = did not run. "
                   "Flagged records are quarantined with their reason in the run directory; their text is not in this report.</p>")
    q = report.get("quarantine", {})
    out.append(f"<h2>Quarantine</h2><p>{_e(q.get('total', 0))} records quarantined.</p>")
    if q.get("by_reason"):
        out.append("<table><tr><th>reason</th><th>records</th></tr>" + "".join(f"<tr><td>{_e(k)}</td><td>{_e(v)}</td></tr>" for k, v in sorted(q["by_reason"].items())) + "</table>")
    out.append("<h2>Steps</h2>")
    plots = []
    for s in report.get("steps", []):
        out.append(f"<h3>{_e(s.get('name'))} <span class='muted'>({_e(s.get('type'))}; {_e(s.get('how', s.get('status', '')))}; "
                   f"{_e(s.get('records_out', '?'))} records; {_e(s.get('seconds', '?'))} s)</span></h3>")
        figs = s.get("figures", [])
        if figs:
            out.append("<table><tr><th>figure</th><th>value</th><th>how it was obtained</th></tr>")
            for f in figs:
                out.append(f"<tr><td>{_e(f['name'])}</td><td>{_e(_fmt(f['value']))}</td><td class='how'>{_e(f['how'])}</td></tr>")
            out.append("</table>")
        for k, v in s.get("sections", {}).items():
            p = _plots(k, v)
            if p:
                plots.append(p)
    if plots:
        out.append("<h2>Plots</h2><div class='plots'>" + "".join(plots) + "</div>")
    ds = report.get("datasets", {})
    if ds:
        out.append("<h2>Datasets</h2><table><tr><th>dataset</th><th>records</th><th>file</th><th>sha256</th></tr>")
        for k, v in ds.items():
            out.append(f"<tr><td>{_e(k)}</td><td>{_e(v.get('records'))}</td><td><code>{_e(v.get('path'))}</code></td><td><code>{_e((v.get('sha256') or '')[:16])}…</code></td></tr>")
        out.append("</table>")
    if report.get("models"):
        out.append("<h2>Models</h2><table><tr><th>model</th><th>sha256</th></tr>" + "".join(f"<tr><td>{_e(k)}</td><td><code>{_e(v)}</code></td></tr>" for k, v in report["models"].items()) + "</table>")
    out.append("<h2>Environment</h2><table>" + "".join(f"<tr><td>{_e(k)}</td><td>{_e(v)}</td></tr>" for k, v in report.get("versions", {}).items()) + "</table>")
    if report.get("public_key"):
        out.append("<h2>Signature</h2><p>manifest.json (sha256 of every file of the run) is signed with Ed25519 in manifest.sig. "
                   "Check with <code>medsynth verify RUN_DIR</code>. Public key:</p>" f"<pre>{_e(report['public_key'])}</pre>")
    out.append("</body></html>")
    return "\n".join(out)
