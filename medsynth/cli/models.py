"""``medsynth models prepare|list``."""

from __future__ import annotations

import time
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

app = typer.Typer(help="Embedded local models: prepare (convert once, offline, sha256-checked) and list.", no_args_is_help=True)
_out = Console()


@app.command("prepare")
def prepare(name: Annotated[str | None, typer.Argument(help="model name (default: the default model)")] = None,
            force: Annotated[bool, typer.Option("--force", help="rebuild the cached folder")] = False,
            all_: Annotated[bool, typer.Option("--all", help="prepare every installed model")] = False) -> None:
    """Assemble/convert/cache a model under $MEDSYNTH_HOME/models (offline) and measure its fastest dtype and thread count
    on this machine (once per CPU and model). `phi-tagger` trains the learned PHI tagger
    on this machine (≈ 15 min on 2 cores; `--all` includes it)."""
    from ..text.models import DEFAULT_MODEL, list_models, prepare_model

    names = [m["name"] for m in list_models() if m["installed"]] + [TAGGER] if all_ else [name or DEFAULT_MODEL]
    for n in names:
        t0 = time.time()
        path = _prepare_tagger(force) if n == TAGGER else prepare_model(n, force=force)
        extra = ""
        if n != TAGGER:  # the fastest dtype/threads on this machine, measured now rather than in the first run (text/runtime.py)
            from ..text.models import load_model

            rt = load_model(n)[2]["runtime"]
            extra = f"; runs in {rt.get('dtype')} with {rt.get('threads')} threads ({rt.get('how')} on this machine)"
        _out.print(f"[green]ready[/] {n}: {path} ({time.time() - t0:.1f}s{extra})")


#: the learned PHI tagger (medsynth.scrub.tagger): trained here, not converted
TAGGER = "phi-tagger"


def _prepare_tagger(force: bool) -> object:
    """Train the tagger unless a verified artifact of this version is already there."""
    from ..exceptions import MedsynthError
    from ..scrub.tagger import PhiTagger, TaggerConfig, tagger_dir, train_tagger

    from ..scrub.vocab import clinical_phrases, clinical_words, person_words, place_words

    # the scrubber's vocabulary guard: its word and phrase sets built once into $MEDSYNTH_HOME/cache (≈ 40 s)
    clinical_words(), clinical_phrases(), person_words(), place_words()
    d = tagger_dir()
    if not force:
        try:
            PhiTagger.load(d)
            return d
        except MedsynthError:
            pass
    _out.print(f"training the PHI tagger into {d} (MiniLM on synthetic notes; ≈ 15 min on 2 cores)…", highlight=False)
    train_tagger(d, TaggerConfig(), progress=lambda s: _out.print(f"  {s}", highlight=False, markup=False))
    return d


@app.command("list")
def list_() -> None:
    """List registered models with installed/prepared status."""
    from ..text.models import list_models

    t = Table()
    for c in ("model", "installed", "prepared", "detail"):
        t.add_column(c)
    for m in list_models():
        t.add_row(m["name"], "yes" if m["installed"] else "no", "yes" if m["prepared"] else "no", m["detail"])
    from ..exceptions import MedsynthError
    from ..scrub.tagger import PhiTagger, tagger_dir

    try:
        tg = PhiTagger.load(tagger_dir())
        t.add_row(TAGGER, "yes", "yes", f"{tagger_dir()} (trained {tg.meta.get('train_seconds')} s; dev recall {tg.meta.get('dev', {}).get('recall', 0):.3f})")
    except MedsynthError:
        t.add_row(TAGGER, "yes", "no", f"train it: medsynth models prepare {TAGGER}")
    _out.print(t)
