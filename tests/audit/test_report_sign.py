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
    assert ok and src.startswith("this machine's key, SHA256:")
    # another machine does not trust the key by default: a valid signature by an unknown key is a failure
    ok, src = verify_manifest(m, tmp_path / "manifest.sig", tmp_path / "otherhome")
    assert not ok and "do not trust" in src
    pub = tmp_path / "home" / "keys" / "medsynth_ed25519.pub.pem"
    ok, src = verify_manifest(m, tmp_path / "manifest.sig", tmp_path / "otherhome", trust=[pub])
    assert ok and "--trust" in src
    (tmp_path / "otherhome" / "keys" / "trusted").mkdir(parents=True)
    shutil.copy(pub, tmp_path / "otherhome" / "keys" / "trusted" / "alice.pem")
    ok, src = verify_manifest(m, tmp_path / "manifest.sig", tmp_path / "otherhome")
    assert ok and "alice.pem" in src
    m.write_text(json.dumps({"files": {"x": 1}}))
    assert not verify_manifest(m, tmp_path / "manifest.sig", tmp_path / "home")[0]
    assert oct((tmp_path / "home" / "keys" / "medsynth_ed25519.pem").stat().st_mode)[-3:] == "600"


def _chromium():
    return shutil.which("chromium") or shutil.which("chromium-browser")


def _offline_flags(tmp_path: Path) -> list[str]:
    """Debian's headless Chromium with no network and a throwaway profile."""
    return ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", f"--user-data-dir={tmp_path / 'prof'}"]


def _dump_dom(page: Path, tmp_path: Path) -> str:
    """The DOM of ``page`` after headless Chromium rendered it."""
    return subprocess.run([_chromium(), *_offline_flags(tmp_path), "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=120).stdout


@pytest.mark.skipif(_chromium() is None, reason="Debian's chromium is not installed (install.sh test installs it)")
def test_report_renders_in_headless_chromium(tmp_path):
    p = tmp_path / "report.html"
    p.write_text(render_html(REPORT))
    dom = _dump_dom(p, tmp_path)
    assert "Distance to closest private record" in dom and "<svg" in dom
    shot = tmp_path / "shot.png"
    subprocess.run([_chromium(), *_offline_flags(tmp_path), f"--screenshot={shot}", "--window-size=1100,1400", p.as_uri()], capture_output=True, timeout=120)
    from PIL import Image

    im = Image.open(shot).convert("RGB")
    colors = im.getcolors(maxcolors=1 << 20)
    # the histogram bars (blue/orange) are actually painted
    assert any(abs(r - 0x25) < 40 and abs(g - 0x63) < 60 and b > 180 for _, (r, g, b) in colors)


# -- the full privacy report in headless Chromium ---------------------------------------------------------------

FULL = {"recipe": "privacy", "run_id": "p-1", "status": "completed", "seconds": 2.0, "versions": {"python": "3.11"}, "public_key": "-----BEGIN PUBLIC KEY-----",
        "quarantine": {"total": 3, "by_reason": {"rare_content": 2, "phi_replay": 1}},
        "steps": [
            {"name": "seeds", "type": "scrub", "records_out": 40, "figures": [{"name": "phi_found", "value": {"NAME": 12, "DATE": 30}, "how": "PHI spans per type"}],
             "sections": {"phi_counts": {"NAME": 12, "DATE": 30, "MRN": 5, "ADDRESS": 2}}},
            {"name": "audit", "type": "audit", "records_out": 97,
             "figures": [{"name": "dcr.synthetic_dcr_median", "value": 0.08, "how": "cosine distance (MiniLM)"},
                         {"name": "rare_content.threshold", "value": 45.5, "how": "holdout 99% quantile"}],
             "sections": {
                 "dcr.dcr_hist": {"synthetic": [0.01 * i for i in range(40)], "holdout": [0.012 * i for i in range(30)]},
                 "rare_content.specific_overlap_hist": {"plot": {"kind": "histogram", "title": "Patient-specific content shared with one private record",
                                                                 "xlabel": "M", "series": {"synthetic": [1, 2, 3, 50], "holdout": [0, 1, 2, 4]}}, "caption": "M"},
                 "canary_exposure.exposure": {"plot": {"kind": "bars", "title": "Canary exposure (bits)", "groups": {"exposure": {"c1 x1": 3.2, "c2 x4": 9.1},
                                                                                                                        "max (log2|R|)": {"c1 x1": 20, "c2 x4": 20}}}, "caption": "exposure"},
                 "audit_summary": {"verdict": "fail", "release_reasons": ["rare_content: 2.0% of records"], "policy": "privacy/policy.yaml",
                                   "audits": {"rare_content": {"verdict": "fail", "flagged": 2, "reasons": ["2.0%"]}}}}},
            {"name": "train", "type": "train", "records_out": 0, "figures": [{"name": "mia.loss.auc", "value": 0.71, "how": "loss threshold attack"}],
             "sections": {"text.membership_inference.roc": {"plot": {"kind": "lines", "title": "Membership inference ROC", "xlabel": "false positive rate",
                                                                     "ylabel": "true positive rate", "diagonal": True,
                                                                     "series": {"loss (AUC 0.710)": {"x": [0, 0.1, 0.5, 1], "y": [0, 0.3, 0.8, 1]}}}, "caption": "MIA"}}},
        ]}
TITLES = ["Distance to closest private record", "Patient-specific content shared with one private record", "Canary exposure (bits)",
          "Membership inference ROC", "PHI detected per type"]


_BROWSER_SERVICE_HOSTS = {"update.googleapis.com", "accounts.google.com", "clients2.google.com", "clientservices.googleapis.com",
                          "safebrowsing.googleapis.com", "redirector.gvt1.com", "optimizationguide-pa.googleapis.com", "android.clients.google.com"}


class _Recorder:
    """A proxy on 127.0.0.1 that records every request Chromium sends through it (and answers 404)."""

    def __init__(self):
        import http.server
        import threading

        seen = self.seen = []

        class H(http.server.BaseHTTPRequestHandler):
            def _any(self):
                seen.append((self.command, self.path))
                self.send_response(404)
                self.end_headers()

            do_GET = do_POST = do_HEAD = do_CONNECT = _any

            def log_message(self, *a):
                pass

        self.srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.port = self.srv.server_address[1]
        self.t = threading.Thread(target=self.srv.serve_forever, daemon=True)
        self.t.start()

    def close(self):
        self.srv.shutdown()


def _flags(tmp_path, proxy_port):
    return ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--disable-default-apps", "--disable-extensions", "--metrics-recording-only", "--no-default-browser-check",
            "--disable-client-side-phishing-detection", "--disable-domain-reliability", "--disable-breakpad",
            "--disable-component-extensions-with-background-pages", "--safebrowsing-disable-auto-update",
            "--disable-features=NetworkTimeServiceQuerying,OptimizationHints,OptimizationHintsFetching,OptimizationGuideModelDownloading,"
            "Translate,MediaRouter,AutofillServerCommunication,CertificateTransparencyComponentUpdater",
            f"--proxy-server=http://127.0.0.1:{proxy_port}", "--proxy-bypass-list=<-loopback>", f"--user-data-dir={tmp_path / 'prof'}"]


@pytest.mark.skipif(_chromium() is None, reason="Debian's chromium is not installed (install.sh test installs it)")
def test_full_report_renders_every_plot_without_external_requests(tmp_path):
    from PIL import Image

    rec = _Recorder()
    try:
        page = tmp_path / "report.html"
        page.write_text(render_html(FULL), encoding="utf-8")
        dom = subprocess.run([_chromium(), *_flags(tmp_path, rec.port), "--virtual-time-budget=3000", "--dump-dom", page.as_uri()],
                             capture_output=True, text=True, timeout=180).stdout
        for t in TITLES:
            assert t in dom, t
        assert dom.count("<svg") >= len(TITLES) and dom.count('class="bar') > 20
        shot = tmp_path / "shot.png"
        subprocess.run([_chromium(), *_flags(tmp_path, rec.port), f"--screenshot={shot}", "--window-size=1100,4000", page.as_uri()],
                       capture_output=True, timeout=180)
        px = Image.open(shot).convert("RGB").getcolors(maxcolors=1 << 22)
        blue = sum(n for n, (r, g, b) in px if abs(r - 0x25) < 40 and abs(g - 0x63) < 60 and b > 180)
        orange = sum(n for n, (r, g, b) in px if r > 200 and 90 < g < 190 and b < 110)
        assert blue > 2000 and orange > 500  # several series actually painted
        # the report made no request at all. Chromium's own browser services still call home through the proxy (component
        # updater, account and time services) whatever the flags; those exact hosts are ignored. A CDN a report might
        # use (fonts.googleapis.com, gstatic, cdnjs, ...) is not on this list, and the static test above forbids any URL.
        page_requests = [(m, u) for m, u in rec.seen if u.split("://")[-1].split("/")[0].split(":")[0] not in _BROWSER_SERVICE_HOSTS]
        assert page_requests == [], page_requests
        # control: the recorder does see a page that loads an external resource (so the check above can fail)
        leaky = tmp_path / "leaky.html"
        leaky.write_text("<html><body><img src='http://example.invalid/pixel.png'></body></html>")
        subprocess.run([_chromium(), *_flags(tmp_path, rec.port), "--virtual-time-budget=3000", "--dump-dom", leaky.as_uri()],
                       capture_output=True, timeout=180)
        assert any("example.invalid" in p for _, p in rec.seen)
    finally:
        rec.close()


def test_report_html_has_no_external_references():
    import re

    html = render_html(FULL)
    body = html.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert not re.search(r"(?i)\b(?:src|href)\s*=", body) and "url(" not in body and "@import" not in body
    assert "default-src 'none'" in html


def test_any_changed_byte_fails_verify(tmp_path):
    import random

    from medsynth.recipe.engine import write_manifest
    from medsynth.recipe.verify import verify_run

    run = tmp_path / "run"
    (run / "steps" / "01_a").mkdir(parents=True)
    (run / "steps" / "01_a" / "a.jsonl").write_text('{"id": "1", "text": "x"}\n')
    (run / "report.html").write_text(render_html(FULL))
    (run / "report.json").write_text(json.dumps(FULL))
    home = tmp_path / "home"
    sign_manifest(write_manifest(run), home)
    assert verify_run(run, home=home).ok
    rng = random.Random(0)
    targets = [p for p in run.rglob("*") if p.is_file()]
    assert {p.name for p in targets} >= {"manifest.json", "manifest.sig", "report.html", "a.jsonl"}
    for p in targets:
        orig = p.read_bytes()
        for pos in {0, len(orig) // 2, len(orig) - 1, rng.randrange(len(orig))}:
            b = bytearray(orig)
            b[pos] = (b[pos] + 1) % 256 if chr(b[pos]) != " " else ord("\t")
            p.write_bytes(bytes(b))
            assert not verify_run(run, home=home).ok, (p.name, pos)
        p.write_bytes(orig)
    assert verify_run(run, home=home).ok
    (run / "extra.txt").write_text("added")
    assert not verify_run(run, home=home).ok
    (run / "extra.txt").unlink()
    (run / "report.json").unlink()
    v = verify_run(run, home=home)
    assert not v.ok and any("missing file" in x for x in v.problems)


CLASSES = {"recipe": "v", "run_id": "v-1", "status": "completed", "seconds": 1.0, "versions": {}, "quarantine": {"total": 1, "by_reason": {"verbatim_copy": 1}},
           "steps": [{"name": "audit", "type": "audit", "records_out": 9, "figures": [{"name": "records_released", "value": 9, "how": "records passing"}],
                      "sections": {"audit_summary": {
                          "verdict": "fail", "required": ["phi_replay", "verbatim_copy"], "policy": "privacy/policy.yaml",
                          "release_reasons": ["verbatim_copy: 10.0% of records are verbatim copies"],
                          "exceptions": ["verbatim_copy: fail (10.0% of records are verbatim copies)"],
                          "protects": {"phi_replay": "identifiers of real patients reappearing"},
                          "audits": {"phi_replay": {"verdict": "not_powered", "reason": "0 PHI strings of the private set to look for", "flagged": 0, "reasons": [], "caveats": []},
                                     "verbatim_copy": {"verdict": "fail", "reason": "10.0% of records are verbatim copies", "flagged": 1, "reasons": ["10.0%"],
                                                       "caveats": ["the holdout is too small to certify a false-flag rate of 0.17%"]},
                                     "prefix_extraction": {"verdict": "skipped", "reason": "no generator given to the audit", "flagged": 0, "reasons": [], "caveats": []},
                                     "dcr": {"verdict": "pass", "reason": "ran", "flagged": 0, "reasons": [], "caveats": []}}}}}]}


@pytest.mark.skipif(_chromium() is None, reason="Debian's chromium is not installed (install.sh test installs it)")
def test_report_summary_shows_each_verdict_class_first(tmp_path):
    p = tmp_path / "report.html"
    p.write_text(render_html(CLASSES))
    dom = _dump_dom(p, tmp_path)
    # the summary comes before the evidence, with the verdict, the exceptions and what was not run
    assert dom.index("Release verdict") < dom.index("Privacy audit") < dom.index("Steps")
    summary = dom[dom.index("Release verdict"):dom.index("Privacy audit")]
    assert "FAIL" in summary and "verbatim_copy: fail (10.0% of records are verbatim copies)" in summary
    assert "Not run: prefix_extraction" in summary and "Caveats" in summary
    table = dom[dom.index("Privacy audit"):dom.index("Steps")]
    for name, verdict in [("phi_replay", "not_powered"), ("verbatim_copy", "fail"), ("prefix_extraction", "skipped"), ("dcr", "pass")]:
        row = _row(table, name)
        assert f"class=\"{verdict}\">{verdict}<" in row, (name, row)
    assert "identifiers of real patients reappearing" in table and "0 PHI strings" in table


def _report_cli(tmp_path: Path, report: dict) -> subprocess.CompletedProcess:
    """`medsynth report` on a run folder holding only ``report``."""
    import sys

    run = tmp_path / "run"
    run.mkdir()
    (run / "report.json").write_text(json.dumps(report))
    return subprocess.run([sys.executable, "-m", "medsynth.cli", "report", str(run)], capture_output=True, text=True)


def _row(html: str, first_cell: str) -> str:
    """The table row of ``html`` whose first cell is ``first_cell``."""
    row = html[html.index(f"<td>{first_cell}</td>"):]
    return row[:row.index("</tr>")]


def test_report_cli_prints_verdict_and_exceptions_first(tmp_path):
    r = _report_cli(tmp_path, CLASSES)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[1] == "release verdict: fail" and "exception: verbatim_copy: fail" in lines[2]
    assert any(line.strip() == "prefix_extraction: skipped (no generator given to the audit)" for line in lines)


MODELS = {"recipe": "combined_dp", "run_id": "r2", "status": "completed", "steps": [
    {"name": "train", "type": "train", "figures": [{"name": "text.micro_f1", "value": 0.135, "how": "evaluated on 577 real reports"}],
     "sections": {"model_verdicts": {
         "text": {"verdict": "not_useful", "model": "text_embed", "dp": True,
                  "reason": "macro AUROC 0.497 vs 0.500 for the label frequencies; 95 % bootstrap interval of the gain [-0.02, +0.01] includes 0"},
         "row": {"verdict": "useful", "model": "mlp", "dp": True, "reason": "macro AUROC 0.870 vs 0.500 for the label frequencies"}}}}]}


@pytest.mark.skipif(_chromium() is None, reason="Debian's chromium is not installed (install.sh test installs it)")
def test_a_model_no_better_than_its_prior_is_said_first_in_the_report(tmp_path):
    p = tmp_path / "report.html"
    p.write_text(render_html(MODELS))
    dom = _dump_dom(p, tmp_path)
    assert dom.index("Trained models") < dom.index("text.micro_f1")  # the verdict before the figure
    block = dom[dom.index("Trained models"):dom.index("<h2>Steps")]
    assert "1 of 2 trained model(s) are not shown to be better than predicting the label frequencies: train/text" in block
    assert 'class="fail">NOT USEFUL<' in _row(block, "train/text")
    assert 'class="pass">useful<' in _row(block, "train/row")


def test_report_cli_prints_each_model_verdict_before_the_figures(tmp_path):
    r = _report_cli(tmp_path, MODELS)
    assert r.returncode == 0, r.stderr
    out = " ".join(r.stdout.split())  # the console wraps long lines
    assert out.index("model train/text: not_useful (macro AUROC 0.497") < out.index("model train/row: useful (") < out.index("text.micro_f1 = 0.135")
