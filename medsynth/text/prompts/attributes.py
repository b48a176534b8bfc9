"""``attributes`` (AttrPrompt / MSP): attribute-controlled prompts, sampled to cover combinations.

Each document gets a combination of attribute values ("Length: short", "Comparison: stable") in its header; the
combinations are enumerated (Cartesian product, capped) in a seeded order and taken round-robin, so every
combination is covered as evenly as possible instead of whatever the model likes to write. Attributes come from:

- ``given``: the recipe lists attributes and values (``attributes: {comparison: [stable, unchanged, new]}``);
- ``llm`` (AttrPrompt): the generator itself is shown seed documents and asked to continue a list of
  "attribute: value, value" lines; only values that occur in at least one seed are kept (so examples can show
  them and junk is dropped), and attributes need two such values. Proposed/kept counts are reported; when the
  model proposes nothing usable, the given attributes (or ``length`` alone) are used and the report says so.

``length`` (short/medium/long by the seeds' word-count terciles) is measured, not matched. In-context examples
show the values their own text has (a value applies when it occurs in the example's text).
"""

from __future__ import annotations

import itertools
import random
import re
from typing import Any, Literal

from pydantic import Field

from ...registry import STRATEGIES
from .base import Job, Plan, Stage, Strategy, StrategyEnv, StrategyOptions, rng_for

__all__ = ["AttributesStrategy"]


class AttributesOptions(StrategyOptions):
    source: Literal["given", "llm"] = "given"
    attributes: dict[str, list[str]] = Field(default_factory=dict, description="attribute → values (source: given, and fallback of llm)")
    length: bool = Field(True, description="add the measured 'length' attribute (short/medium/long)")
    max_combinations: int = Field(512, ge=1)
    llm_seed_examples: int = Field(3, ge=1, le=8)
    llm_max_attributes: int = Field(4, ge=1, le=12)


_LEN = ("short", "medium", "long")


@STRATEGIES.register("attributes")
class AttributesStrategy(Strategy):
    name = "attributes"
    survey_method = "attribute-controlled prompts (AttrPrompt, MSP)"
    description = "attribute values in the header, combinations covered round-robin; attributes given or extracted by the LLM"
    stage = Stage.ATTRIBUTES
    Config = AttributesOptions

    def check(self, config: Any) -> list[tuple[str, str]]:
        o: AttributesOptions = self.options  # type: ignore[assignment]
        if o.source == "given" and not o.attributes and not o.length:
            return [("strategies.attributes", "source: given needs `attributes: {name: [values]}` or `length: true`")]
        bad = [k for k, v in o.attributes.items() if len(v) < 2]
        return [("strategies.attributes.attributes", f"attribute(s) {', '.join(bad)} need at least two values")] if bad else []

    def setup(self, env: StrategyEnv) -> None:
        o: AttributesOptions = self.options  # type: ignore[assignment]
        attrs: dict[str, list[str]] = {}
        if o.source == "llm":
            attrs = self._from_llm(env)
            if not attrs:
                env.figure("attributes_llm_fallback", True, "the generator proposed no attribute with two values found in the seeds; using the given attributes")
        if not attrs:
            attrs = {k: list(v) for k, v in o.attributes.items()}
        words = sorted(len((r.text or "").split()) for r in env.seeds) or [0]
        self.cuts = (words[len(words) // 3], words[(2 * len(words)) // 3])
        if o.length:
            attrs["length"] = list(_LEN)
        self.attrs = attrs
        names = sorted(attrs)
        combos = list(itertools.islice(itertools.product(*[attrs[n] for n in names]), o.max_combinations))
        rng_for(env.seed, "attributes").shuffle(combos)
        self.names, self.combos = names, combos
        for r in env.seeds:
            env.example_attributes[r.id] = self.values_of(r.text or "")
        env.sections["attributes"] = {"source": o.source, "attributes": attrs, "combinations": len(combos)}
        env.figure("attribute_combinations", len(combos), f"attribute-value combinations covered round-robin ({', '.join(names)})")

    def values_of(self, text: str) -> dict[str, str]:
        out: dict[str, str] = {}
        low = text.lower()
        for name, vals in self.attrs.items():
            if name == "length":
                n = len(text.split())
                out[name] = "short" if n <= self.cuts[0] else ("medium" if n <= self.cuts[1] else "long")
                continue
            for v in vals:
                if re.search(r"(?<!\w)" + re.escape(v.lower()) + r"(?!\w)", low):
                    out[name] = v
                    break
        return out

    def _from_llm(self, env: StrategyEnv) -> dict[str, list[str]]:
        o: AttributesOptions = self.options  # type: ignore[assignment]
        rng = rng_for(env.seed, "attributes-llm")
        prompts = []
        for i in range(3):
            exs = rng.sample(env.seeds, min(o.llm_seed_examples, len(env.seeds)))
            body = "".join(f"{(r.text or '').strip()}\n\n" for r in exs)
            prompts.append(f"{env.schema.document.header}\n\n{body}The reports above differ in these attributes, each with its possible values:\n"
                           f"- length: short, medium, long\n-")
        outs = env.ask(prompts, max_new_tokens=64, stop=["\n\n"], temperature=0.7 if len(prompts) > 1 else 0.0)
        seeds_low = [(r.text or "").lower() for r in env.seeds]
        proposed: dict[str, set[str]] = {}
        for out in outs:
            for line in ("-" + out).splitlines():
                m = re.match(r"^\s*-\s*([A-Za-z][A-Za-z ]{1,30}):\s*(.+)$", line)
                if not m:
                    continue
                name = m.group(1).strip().lower()
                if name == "length":
                    continue
                for v in re.split(r"\s*[,;/]\s*", m.group(2)):
                    v = v.strip(" .").lower()
                    if 1 < len(v) <= 40 and re.fullmatch(r"[a-z][a-z \-]*", v):
                        proposed.setdefault(name, set()).add(v)
        n_prop = sum(len(v) for v in proposed.values())
        kept: dict[str, list[str]] = {}
        for name, vals in sorted(proposed.items()):
            grounded = sorted(v for v in vals if any(re.search(r"(?<!\w)" + re.escape(v) + r"(?!\w)", t) for t in seeds_low))
            if len(grounded) >= 2:
                kept[name] = grounded[:6]
        kept = dict(list(kept.items())[: o.llm_max_attributes])
        env.figure("attributes_llm_proposed", n_prop, "attribute values the generator proposed (well-formed), over all attributes")
        env.figure("attributes_llm_kept", {k: len(v) for k, v in kept.items()}, "values kept per attribute: those occurring in at least one seed (attributes need two)")
        return kept

    def plan(self, job: Job, env: StrategyEnv) -> None:
        if not self.combos:
            return
        i = job.batch * 1000 + job.index
        combo = self.combos[i % len(self.combos)]
        job.plan.attributes = dict(zip(self.names, combo, strict=True))
        job.notes["attributes"] = dict(job.plan.attributes)

    def describe(self, plan: Plan, env: StrategyEnv, rng: random.Random, target: bool) -> list[tuple[str, str]]:
        return [(n.capitalize(), plan.attributes[n]) for n in self.names if n in plan.attributes]
