"""``medsynth env``: is this machine ready to run fully offline?"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

__all__ = ["package_data_file", "iu_reports_path", "set_offline_defaults"]

_OFFLINE_FLAGS = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE", "HF_HUB_DISABLE_TELEMETRY")


def set_offline_defaults() -> None:
    """Disable Hugging Face hub access unless the user explicitly set the flags (medsynth never needs the hub)."""
    for k in _OFFLINE_FLAGS:
        os.environ.setdefault(k, "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    # tldextract (used by Presidio's e-mail/URL recognizers) fetches the public suffix list from the internet
    # unless told otherwise; an empty URL list makes it use its bundled snapshot.
    os.environ.setdefault("TLDEXTRACT_PUBLIC_SUFFIX_LIST_URLS", "")


def package_data_file(package: str, *parts: str) -> Path | None:
    """Path of a data file inside an installed package, found WITHOUT importing the package."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    for loc in spec.submodule_search_locations:
        p = Path(loc).joinpath(*parts)
        if p.exists():
            return p
    return None


def iu_reports_path() -> Path | None:
    return package_data_file("torchxrayvision", "data", "NLMCXR_reports.tgz")
