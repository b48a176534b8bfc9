import json
import shutil
import subprocess
from pathlib import Path

import pytest

from medsynth.audit.report import render_html
from medsynth.audit.sign import sign_manifest, verify_manifest

REPORT = {"recipe": "t", "run_id": "t-1", "status": "completed", "seconds": 1.0, "versions": {"python": "3.11"}, "public_key": "PEM",
          "quarantine": {"total": 2, "by_reason": {"dcr_too_close": 2}},
          "steps": [{"name": "audit", "type": "audit", "records_out": 5, "figures": [{"name": "dcr.flagged", "value": 2, "how": "<b>escaped</b>"}],
                     "sections": {"dcr.dcr_hist": {"synthetic": [0.1, 0.2, 0.3], "holdout": [0.2, 0.3, 0.4]},
                                  "audit_summary": {"verdict": "pass", "release_reasons": [], "policy": "p", "audits": {"dcr": {"verdict": "pass", "flagged": 2, "reasons": []}}}}}]}


def test_html_is_self_contained_and_escaped():
    html = render_html(REPORT)
    assert "<svg" in html and "&lt;b&gt;escaped&lt;/b&gt;" in html
    assert "http://" not in html.replace('xmlns="http://www.w3.org/2000/svg"', "") and "https://" not in html
    assert "<script" not in html


def test_sign_and_verify(tmp_path):
    m = tmp_path / "manifest.json"
    m.write_text(json.dumps({"files": {}}))
    sign_manifest(m, tmp_path / "home")
    ok, src = verify_manifest(m, tmp_path / "manifest.sig", tmp_path / "home")
    assert ok and "trusted key" in src
    ok, src = verify_manifest(m, tmp_path / "manifest.sig", tmp_path / "otherhome")
    assert ok and "embedded" in src
    m.write_text(json.dumps({"files": {"x": 1}}))
    assert not verify_manifest(m, tmp_path / "manifest.sig", tmp_path / "home")[0]
    assert oct((tmp_path / "home" / "keys" / "medsynth_ed25519.pem").stat().st_mode)[-3:] == "600"


def _chromium():
    return shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(_chromium() is None, reason="Debian's chromium is not installed (install.sh test installs it)")
def test_report_renders_in_headless_chromium(tmp_path):
    p = tmp_path / "report.html"
    p.write_text(render_html(REPORT))
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
             "--disable-component-update", "--disable-sync", f"--user-data-dir={tmp_path / 'prof'}"]
    dom = subprocess.run([_chromium(), *flags, "--dump-dom", p.as_uri()], capture_output=True, text=True, timeout=120)
    assert "Distance to closest private record" in dom.stdout and "<svg" in dom.stdout
    shot = tmp_path / "shot.png"
    subprocess.run([_chromium(), *flags, f"--screenshot={shot}", "--window-size=1100,1400", p.as_uri()], capture_output=True, timeout=120)
    from PIL import Image

    im = Image.open(shot).convert("RGB")
    colors = im.getcolors(maxcolors=1 << 20)
    # the histogram bars (blue/orange) are actually painted
    assert any(abs(r - 0x25) < 40 and abs(g - 0x63) < 60 and b > 180 for _, (r, g, b) in colors)
