import importlib
import json
import subprocess
import sys

import medsynth


def test_all_names_resolve_lazily():
    for name in medsynth.__all__:
        assert getattr(medsynth, name) is not None, name


def test_import_is_light():
    code = "import sys, medsynth; import medsynth.cli; print(json.dumps(sorted(m for m in ('torch','transformers','presidio_analyzer','diffusers') if m in sys.modules)))"
    r = subprocess.run([sys.executable, "-c", "import json;" + code], capture_output=True, text=True, check=True)
    assert json.loads(r.stdout) == [], "heavy modules imported at CLI import time"


def test_exceptions_tree():
    ex = importlib.import_module("medsynth.exceptions")
    for n in ex.__all__:
        assert issubclass(getattr(ex, n), ex.MedsynthError)
    assert issubclass(ex.RecipeError, ValueError) and issubclass(ex.MissingDependencyError, ImportError)
    e = ex.MissingDependencyError("llama-cpp-python", "llamacpp", "the llamacpp backend")
    assert 'pip install "medsynth[llamacpp]"' in str(e)


def test_cli_list_and_env_json():
    r = subprocess.run([sys.executable, "-m", "medsynth.cli", "list", "--json"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    assert {"load", "select"} <= set(data["steps"])
    r = subprocess.run([sys.executable, "-m", "medsynth.cli", "env", "--json"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    env = json.loads(r.stdout)
    assert env["network_needed"] is False
    assert env["hf_offline_flags"]["HF_HUB_OFFLINE"] == "1"
