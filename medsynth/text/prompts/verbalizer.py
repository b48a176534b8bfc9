"""``verbalizer``: label words expanded into synonyms, from the seeds, from the LLM itself, or from a file.

Prompts name labels in words. A single fixed word per label makes every generated text use it; a verbalizer bank
gives each label several surface forms (KPT / prototypical verbalizers; MetaPrompt-style expansion by the LLM):

- ``seeds``: the surface forms the annotator finds for each label in the (scrubbed) seeds ("low lung volumes",
  "hypoinflated", "hyperexpanded" for ``Lung``), most frequent first;
- ``llm``: the generator is asked to continue a synonym list whose demonstration lines come from the seeds' own
  banks ("<label words>: synonym; synonym"); proposals are kept only if the schema's annotator maps them back to
  the same label (so ``verify`` can recognise them), and the counts proposed/kept are reported;
- ``file``: a YAML/JSON mapping ``{label: [synonyms]}``.

Examples are verbalized with a form that occurs in their own text; targets with a form drawn from the bank.
``entity_first`` uses the same bank for the mentions it plans.
"""

from __future__ import annotations

import random
import re
from collections import Counter
from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from ...exceptions import RecipeError
from ...registry import STRATEGIES
from .base import Stage, Strategy, StrategyEnv, StrategyOptions

__all__ = ["VerbalizerStrategy"]


class VerbalizerOptions(StrategyOptions):
    source: Literal["seeds", "llm", "file"] = "seeds"
    path: str | None = Field(None, description="YAML/JSON {label: [synonyms]} for source: file")
    max_synonyms: int = Field(8, ge=1, le=64)
    keep_base: bool = Field(True, description="keep the schema's base label words in the bank")


@STRATEGIES.register("verbalizer")
class VerbalizerStrategy(Strategy):
    name = "verbalizer"
    survey_method = "verbalizer expansion (label words → synonyms; KPT, MetaPrompt)"
    description = "each label is worded with a synonym from a bank built from the seeds, the LLM itself, or a file"
    stage = Stage.VOCAB
    Config = VerbalizerOptions

    def check(self, config: Any) -> list[tuple[str, str]]:
        o: VerbalizerOptions = self.options  # type: ignore[assignment]
        if o.source == "file" and (not o.path or not Path(o.path).expanduser().exists()):
            return [("strategies.verbalizer.path", f"source: file needs an existing YAML/JSON file of {{label: [synonyms]}} (got {o.path!r})")]
        return []

    def setup(self, env: StrategyEnv) -> None:
        o: VerbalizerOptions = self.options  # type: ignore[assignment]
        self.bank: dict[str, list[str]] = {}
        seeds_bank = seed_surface_forms(env)
        for lab in env.label_set:
            base = [env.schema.words_for(lab)] if o.keep_base else []
            if o.source == "seeds":
                extra = seeds_bank.get(lab, [])
            elif o.source == "file":
                extra = _read_file(o.path).get(lab, [])  # type: ignore[arg-type]
            else:
                extra = []
            self.bank[lab] = list(dict.fromkeys(base + extra))[: o.max_synonyms] or [lab.lower()]
        if o.source == "llm":
            self._from_llm(env, seeds_bank)
        env.sections["verbalizer"] = {lab: v for lab, v in self.bank.items()}
        env.figure("verbalizer_forms", sum(len(v) for v in self.bank.values()), f"surface forms in the verbalizer bank (source: {o.source}) over {len(self.bank)} labels")

        def verbalize(label: str, rng: random.Random, text: str | None = None) -> str:
            forms = self.bank.get(label) or [env.schema.words_for(label)]
            if text:
                low = text.lower()
                inside = [f for f in forms if f.lower() in low]
                if inside:
                    return inside[0]
            return rng.choice(forms)

        env.verbalize = verbalize

    def _from_llm(self, env: StrategyEnv, seeds_bank: dict[str, list[str]]) -> None:
        o: VerbalizerOptions = self.options  # type: ignore[assignment]
        from ..schemas import doc_labels

        demos = [(lab, forms) for lab, forms in seeds_bank.items() if len(forms) >= 2][:4]
        head = f"{env.schema.document.header.split('.')[0]}: terms and their synonyms, separated by semicolons.\n\n"
        head += "".join(f"{env.schema.words_for(lab)}: {'; '.join(forms[:4])}\n" for lab, forms in demos)
        targets = [lab for lab in env.label_set if lab != env.normal_label]
        outs = env.ask([head + f"{env.schema.words_for(lab)}:" for lab in targets], max_new_tokens=32, stop=["\n"])
        proposed = kept = 0
        for lab, out in zip(targets, outs, strict=True):
            for cand in re.split(r"\s*[;,]\s*", out.strip()):
                cand = cand.strip(" .").lower()
                if not cand or not re.fullmatch(r"[a-z][a-z \-]{1,60}", cand) or len(cand.split()) > 6:
                    continue
                proposed += 1
                # grounding: the annotator must read the synonym as the same label
                if doc_labels(cand, env.schema, [lab]) == [lab] and cand not in self.bank[lab]:
                    self.bank[lab].append(cand)
                    kept += 1
            self.bank[lab] = self.bank[lab][: o.max_synonyms]
        env.figure("verbalizer_llm_proposed", proposed, "synonyms the generator proposed (well-formed phrases)")
        env.figure("verbalizer_llm_kept", kept, "proposed synonyms that the schema's annotator maps back to the same label (grounding check)")


def seed_surface_forms(env: StrategyEnv) -> dict[str, list[str]]:
    """{document label: surface forms of its positive mentions in the seeds, most frequent first}."""
    cnt: dict[str, Counter[str]] = {}
    doc_types = {e.name for e in env.schema.entities if e.doc_label}
    for r in env.seeds:
        text = r.text or ""
        for m in env.annotations[r.id].mentions:
            if m.label in doc_types and not m.negated:
                cnt.setdefault(m.canonical, Counter())[re.sub(r"\s+", " ", text[m.start:m.end].lower())] += 1
    return {lab: [f for f, _ in c.most_common()] for lab, c in cnt.items()}


def _read_file(path: str) -> dict[str, list[str]]:
    p = Path(path).expanduser()
    try:
        if p.suffix.lower() == ".json":
            import json

            data = json.loads(p.read_text(encoding="utf-8"))
        else:
            import yaml

            data = yaml.safe_load(p.read_text(encoding="utf-8"))
    except Exception as e:  # noqa: BLE001
        raise RecipeError(f"verbalizer file {p} cannot be read ({type(e).__name__}); it must be YAML/JSON {{label: [synonyms]}}") from None
    if not isinstance(data, dict) or not all(isinstance(v, list) for v in data.values()):
        raise RecipeError(f"verbalizer file {p} must map each label to a list of synonyms")
    return {str(k): [str(x) for x in v] for k, v in data.items()}
