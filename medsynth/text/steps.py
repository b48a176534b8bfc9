"""The ``generate`` step: labelled synthetic clinical reports from a local LLM.

Strategy (each part is switchable in the recipe and recorded in every record's provenance):

- ``prior``: target label sets are sampled from the seeds' label distribution (incl. the share of normal reports),
  so the synthetic set matches the real label prior instead of being balanced per label.
- ``label`` (ZeroGen): the prompt is conditioned on the target labels, written with verbalizer words.
- ``fewshot``: k scrubbed seed reports (preferring seeds that share a target label) as in-context examples; seed
  ids are kept in provenance.
- ``feedback`` (ProGen-style): from the second round on, the most helpful already-generated reports — those the
  quality estimator (the finding detector) judges to carry exactly their labels — join the in-context pool.
- ``verify``: each output is relabelled by what it actually says (finding detector with negation), so a text is
  never trusted to carry the label it was conditioned on; finding and negation-cue spans come with verified
  offsets. Incomplete, degenerate, unlabelled or duplicate outputs are quarantined with the reason, never dropped.

The base Gemma 3 270M is not instruction-tuned, so the prompt is a document to continue: a header, labelled example
reports, and an open report whose findings line is given.
"""

from __future__ import annotations

import hashlib
import math
import random
import re
from collections import Counter
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from ..data.records import Provenance, Record, Span, invalid_spans
from ..exceptions import ModelNotAvailableError, RecipeError
from ..recipe.step import Step, StepConfig, StepPlan
from ..registry import STEPS
from .backends.base import GenParams

__all__ = ["GenerateStep", "GenerateConfig", "build_prompt", "parse_report"]

HEADER = "Chest radiograph reports (PA and lateral views). Each report starts with the list of its findings.\n\n"


class FeedbackConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    enabled: bool = True
    every: int = Field(4, ge=1, description="refresh the pool of generated examples every N batches")
    k: int = Field(1, ge=0, description="generated examples per prompt (taken from the pool)")


class GenerateConfig(StepConfig):
    type: Literal["generate"] = "generate"
    model: str = Field("gemma3-270m", description="registry name (`medsynth models list`) or a local HF folder")
    backend: Literal["transformers", "openai"] = "transformers"
    backend_options: dict[str, Any] = Field(default_factory=dict, description="e.g. {base_url: http://gpu-server:8000/v1} for openai")
    adapter: str | None = Field(None, description="path of a PEFT adapter to load on the model")
    n_records: int = Field(100, ge=1, le=1_000_000)
    max_attempts_factor: float = Field(2.5, ge=1.0, description="stop after n_records × factor prompts even if fewer were valid (reported)")
    strategies: list[Literal["prior", "label", "fewshot", "feedback", "verify"]] = Field(default_factory=lambda: ["prior", "label", "fewshot", "feedback", "verify"])
    few_shot: int = Field(3, ge=0, le=16)
    feedback: FeedbackConfig = Field(default_factory=FeedbackConfig)
    labels: list[str] | None = Field(None, description="label set (default: the labels of the seeds)")
    max_labels_per_record: int = Field(2, ge=1)
    max_new_tokens: int = Field(110, ge=8, le=2048)
    temperature: float = Field(0.8, ge=0.0, le=2.0)
    top_k: int = Field(40, ge=1)
    top_p: float = Field(0.95, gt=0, le=1)
    repetition_penalty: float | None = Field(None, ge=1.0)
    batch_size: int = Field(8, ge=1, le=256)
    min_chars: int = Field(40, ge=1)
    max_example_overlap: float = Field(0.6, gt=0, le=1, description="reject outputs whose word 3-gram Jaccard with an in-context example reaches this (copying a private seed)")


def _rng(*parts: Any) -> random.Random:
    return random.Random(int.from_bytes(hashlib.sha256(":".join(map(str, parts)).encode()).digest()[:8], "big"))


def _words(labels: list[str]) -> str:
    from .labels import LABEL_WORDS

    return ", ".join(LABEL_WORDS.get(lab, lab.lower()) for lab in labels)


def build_prompt(examples: list[tuple[list[str], str]], target: list[str] | None) -> str:
    """A document to continue: header, labelled example reports, then the open report."""
    parts = [HEADER]
    for labels, text in examples:
        parts.append(f"Findings list: {_words(labels)}\n{text.strip()}\n\n")
    parts.append(f"Findings list: {_words(target) if target else ''}\nFINDINGS:")
    return "".join(parts)


def _jaccard3(a: str, b: str) -> float:
    ta, tb = re.findall(r"\w+", a), re.findall(r"\w+", b)
    ga = {tuple(ta[i : i + 3]) for i in range(len(ta) - 2)}
    gb = {tuple(tb[i : i + 3]) for i in range(len(tb) - 2)}
    return len(ga & gb) / len(ga | gb) if ga and gb else 0.0


_REPEAT = re.compile(r"(\b.{12,}?\b)(?:.*?\1){2,}", re.S)


def parse_report(completion: str, finish_reason: str, min_chars: int = 40) -> tuple[str | None, str | None]:
    """(text, None) for a usable report, (None, reason) otherwise."""
    text = "FINDINGS:" + completion.rstrip()
    text = re.sub(r"[ \t]+", " ", text).strip()
    if "Findings list:" in text:
        text = text.split("Findings list:")[0].strip()
    m = re.search(r"IMPRESSION:\s*(\S.{2,})", text, re.S)
    if not m:
        return None, "incomplete" if finish_reason == "length" else "no_impression"
    if len(text) < min_chars:
        return None, "too_short"
    if sum(ch.isascii() for ch in text) < 0.97 * len(text) or "http" in text.lower() or "<" in text:
        return None, "garbage"
    body = re.sub(r"\b(?:FINDINGS|IMPRESSION):", ".", text)
    sentences = [s.strip().lower() for s in re.split(r"[.\n]", body) if len(s.strip()) > 8]
    if sentences and max(Counter(sentences).values()) >= 3:
        return None, "degenerate_repetition"
    return text, None


@STEPS.register("generate")
class GenerateStep(Step):
    """Generate labelled synthetic reports from seed records (see the module docstring for the strategy)."""

    type = "generate"
    Config = GenerateConfig
    version = "2"

    def check(self, recipe: Any) -> list[tuple[str, str]]:
        c: GenerateConfig = self.config  # type: ignore[assignment]
        if c.backend == "transformers":
            from pathlib import Path

            from ..registry import MODELS

            if c.model not in MODELS and not (Path(c.model).expanduser() / "config.json").exists():
                return [("model", f"unknown model '{c.model}'; registered: {', '.join(MODELS.names())}, or give a local HF folder with config.json")]
        if c.backend == "openai" and "base_url" not in c.backend_options:
            return [("backend_options.base_url", "the openai backend needs the server URL, e.g. http://gpu-server:8000/v1")]
        if c.feedback.enabled and "feedback" in c.strategies and "verify" not in c.strategies:
            return [("strategies", "'feedback' needs 'verify' (the detector is its quality estimator)")]
        return []

    def plan(self, input_sizes: dict[str, int | None]) -> StepPlan:
        c: GenerateConfig = self.config  # type: ignore[assignment]
        prompts = math.ceil(c.n_records * 1.25)
        tokens = prompts * int(c.max_new_tokens * 0.8)
        tps = 40.0 if c.backend == "transformers" else 400.0
        return StepPlan(records_in=next(iter(input_sizes.values()), None), records_out=c.n_records, est_tokens=tokens,
                        est_seconds=tokens / tps + 10, notes=[f"~{tps:.0f} tokens/s assumed for {c.model} on CPU at batch {c.batch_size}"])

    def cache_key_extra(self) -> dict[str, Any]:
        c: GenerateConfig = self.config  # type: ignore[assignment]
        if c.backend != "transformers":
            return {"backend": c.backend_options.get("base_url")}
        try:
            from .models import model_info

            return {"model_sha256": model_info(c.model).get("model_sha256")}
        except Exception:  # noqa: BLE001  (no cached model yet: the key still changes when it is prepared)
            return {}

    def _backend(self, ctx: Any) -> Any:
        c: GenerateConfig = self.config  # type: ignore[assignment]
        from ..registry import BACKENDS

        opts = dict(c.backend_options)
        if c.backend == "transformers":
            opts.setdefault("adapter", c.adapter)
        try:
            return BACKENDS.get(c.backend)(model=c.model, **opts)
        except ModelNotAvailableError:
            raise
        except OSError as e:
            raise ModelNotAvailableError(f"Could not load model '{c.model}' ({type(e).__name__}). Run `medsynth models prepare {c.model} --force`.") from None

    def run(self, ctx: Any) -> None:
        from .labels import detect, detect_labels

        c: GenerateConfig = self.config  # type: ignore[assignment]
        seeds = [r for r in ctx.input() if r.text and r.labels]
        if not seeds:
            raise RecipeError(f"Step '{ctx.step_name}': the input dataset has no seed records with text and labels. "
                              "Give at least one labelled seed (e.g. `select` with `sample:` on a labelled source).")
        label_set = c.labels or sorted({lab for r in seeds for lab in r.labels})
        unknown = [lab for lab in label_set if lab not in {x for r in seeds for x in r.labels}]
        prior = Counter(lab for r in seeds for lab in r.labels if lab in label_set)
        n_normal = sum(1 for r in seeds if r.labels == ["normal"])
        p_normal = n_normal / len(seeds)
        n_abn_dist = Counter(min(len([x for x in r.labels if x != "normal"]), c.max_labels_per_record) for r in seeds if r.labels != ["normal"])
        abnormal = [lab for lab in label_set if lab != "normal"]
        use = set(c.strategies)
        bs = c.batch_size
        max_batches = math.ceil(c.n_records * c.max_attempts_factor / bs)
        params = GenParams(max_new_tokens=c.max_new_tokens, temperature=c.temperature, top_k=c.top_k, top_p=c.top_p,
                           repetition_penalty=c.repetition_penalty, stop=["\n\n", "Findings list:"], seed=ctx.seed, batch_size=bs)

        def sample_target(rng: random.Random, observed: Counter[str], n_obs: int) -> list[str]:
            if "prior" not in use:
                return [rng.choice(label_set)]
            # prior matching: steer conditioning against the deficit of what the model actually wrote so far
            # (the base model drifts to normal reports); depends only on committed batches, so resume-safe
            pn, weights = p_normal, [prior[lab] or 0.5 for lab in abnormal]
            if n_obs >= 16:
                pn = min(max(p_normal - (observed["normal"] / n_obs - p_normal), 0.05), 0.95)
                seed_n = sum(prior[lab] for lab in abnormal) or 1
                obs_n = sum(observed[lab] for lab in abnormal) or 1
                weights = [max(prior[lab] / seed_n * 2 - observed[lab] / obs_n, 0.1 * (prior[lab] / seed_n) + 1e-3) for lab in abnormal]
            if rng.random() < pn or not abnormal:
                return ["normal"]
            k = rng.choices(list(n_abn_dist), weights=list(n_abn_dist.values()))[0] if n_abn_dist else 1
            out: list[str] = []
            while len(out) < max(1, k) and len(out) < len(abnormal):
                lab = rng.choices(abnormal, weights=weights)[0]
                if lab not in out:
                    out.append(lab)
            return sorted(out)

        committed = ctx.committed()
        done_recs: list[Record] = list(committed)  # kept up to date batch by batch (bounded work per batch)
        observed: Counter[str] = Counter(lab for r in committed for lab in r.labels)
        meta_all = ctx.committed_meta()
        valid = len(committed)
        seen_hashes = {hashlib.sha256(r.text.encode()).hexdigest() for r in seeds} | {hashlib.sha256(r.text.encode()).hexdigest() for r in committed}
        backend = None
        stats = Counter()
        for m in meta_all.values():
            stats.update(m.get("stats", {}))
        with ctx.progress(c.n_records, f"generate ({c.model})", completed=min(valid, c.n_records)) as bar:
            for b in ctx.pending_batches(max_batches):
                if valid >= c.n_records:
                    break
                if backend is None:
                    backend = self._backend(ctx)
                    ctx.add_model(backend.model_id, backend.model_sha256 or "")
                # in-context pool: seeds (+ feedback examples chosen by the quality estimator from earlier rounds)
                pool_fb: list[Record] = []
                if "feedback" in use and c.feedback.enabled and c.feedback.k and b >= c.feedback.every:
                    cutoff = (b // c.feedback.every) * c.feedback.every
                    earlier = [r for r in done_recs if int(r.provenance.params.get("batch", 0)) < cutoff]
                    pool_fb = [r for r in earlier if r.scores.get("label_fidelity") == 1.0 and r.scores.get("complete")]
                prompts, jobs = [], []
                for j in range(bs):
                    rng = _rng(ctx.seed, b, j)
                    target = sample_target(rng, observed, len(done_recs))
                    exs: list[Record] = []
                    if "fewshot" in use and c.few_shot:
                        sharing = [r for r in seeds if set(r.labels) & set(target)]
                        k_fb = min(c.feedback.k, len(pool_fb)) if pool_fb else 0
                        k_seed = c.few_shot - k_fb
                        if sharing:
                            exs.append(rng.choice(sharing))
                        rest = [r for r in seeds if r not in exs]
                        exs += rng.sample(rest, min(max(k_seed - len(exs), 0), len(rest)))
                        if k_fb:
                            exs += rng.sample(pool_fb, k_fb)
                        rng.shuffle(exs)
                    prompt = build_prompt([(r.labels, r.text or "") for r in exs], target if "label" in use else None)
                    prompts.append(prompt)
                    jobs.append((target, exs))
                comps = backend.generate(prompts, params)
                out: list[Record] = []
                bstats: Counter[str] = Counter()
                for j, (comp, (target, exs)) in enumerate(zip(comps, jobs, strict=True)):
                    rid = f"{ctx.step_name}-{b:05d}-{j:02d}"
                    prov = Provenance(step=ctx.step_name, generator=f"{c.backend}:{backend.model_id}", model_sha256=backend.model_sha256,
                                      prompt_id=hashlib.sha256(prompts[j].encode()).hexdigest()[:16], strategy=sorted(use),
                                      seed_record_ids=[r.id for r in exs if not r.id.startswith(ctx.step_name)],
                                      params={"batch": b, "target_labels": target, "temperature": c.temperature, "top_k": c.top_k,
                                              "top_p": c.top_p, "max_new_tokens": c.max_new_tokens, "seed": ctx.seed,
                                              "feedback_examples": [r.id for r in exs if r.id.startswith(ctx.step_name)]})
                    bstats["prompts"] += 1
                    bstats["tokens"] += comp.completion_tokens
                    if comp.finish_reason == "error":
                        bstats["rejected:" + str(comp.meta.get("error", "backend_error"))] += 1
                        ctx.quarantine(Record(id=rid, text=None, provenance=prov), str(comp.meta.get("error", "backend_error")), "generate")
                        continue
                    text, reason = parse_report(comp.text, comp.finish_reason, c.min_chars)
                    if text is None:
                        bstats["rejected:" + reason] += 1
                        ctx.quarantine(Record(id=rid, text="FINDINGS:" + comp.text, provenance=prov), reason, "generate")
                        continue
                    h = hashlib.sha256(text.encode()).hexdigest()
                    body = text.lower()
                    if exs and max(_jaccard3(body, (e.text or "").lower()) for e in exs) >= c.max_example_overlap:
                        bstats["rejected:copies_prompt_example"] += 1
                        ctx.quarantine(Record(id=rid, text=text, provenance=prov), "copies_prompt_example", "generate")
                        continue
                    if h in seen_hashes:
                        bstats["rejected:duplicate"] += 1
                        ctx.quarantine(Record(id=rid, text=text, provenance=prov), "duplicate", "generate")
                        continue
                    labels = detect_labels(text, label_set) if "verify" in use else list(target)
                    if not labels:
                        bstats["rejected:no_label"] += 1
                        ctx.quarantine(Record(id=rid, text=text, provenance=prov), "no_label", "generate")
                        continue
                    spans = []
                    for mnt in detect(text, [x for x in label_set if x != "normal"]):
                        spans.append(Span(start=mnt.start, end=mnt.end, label="NEGATED_FINDING" if mnt.negated else "FINDING", text=text[mnt.start:mnt.end]))
                        if mnt.cue:
                            a, z = mnt.cue
                            if not any(s.start == a and s.end == z for s in spans):
                                spans.append(Span(start=a, end=z, label="NEGATION_CUE", text=text[a:z]))
                    spans.sort(key=lambda s: (s.start, s.end))
                    rec = Record(id=rid, kind="text", text=text, labels=labels, spans=spans, provenance=prov,
                                 meta={"conditioned_on": target, "finish_reason": comp.finish_reason},
                                 scores={"label_fidelity": round(len(set(target) & set(labels)) / len(set(target) | set(labels)), 4),
                                         "conditioned_label_present": bool(set(target) & set(labels)), "complete": True})
                    bad = invalid_spans(rec)
                    if bad:
                        bstats["rejected:invalid_span"] += 1
                        ctx.quarantine(rec, "invalid_span", "generate")
                        continue
                    seen_hashes.add(h)
                    out.append(rec)
                    bstats["valid"] += 1
                ctx.commit_batch(b, out, {"stats": dict(bstats)})
                done_recs.extend(out)
                observed.update(lab for r in out for lab in r.labels)
                stats.update(bstats)
                valid += len(out)
                bar.advance(min(len(out), max(c.n_records - (valid - len(out)), 0)), tokens=bstats["tokens"])
        if backend is not None:
            backend.close()
        records = ctx.committed()[: c.n_records]
        prompts_total = stats.get("prompts", 0)
        rejects = {k.split(":", 1)[1]: v for k, v in stats.items() if k.startswith("rejected:")}
        ctx.add_figure("records_asked", c.n_records, "n_records in the recipe")
        ctx.add_figure("records_generated", len(records), f"valid records kept (first {c.n_records} in batch order)")
        if len(records) < c.n_records:
            ctx.add_figure("shortfall", c.n_records - len(records), f"fewer valid records than asked after {prompts_total} prompts (max_attempts_factor={c.max_attempts_factor})")
        ctx.add_figure("yield", round(stats.get("valid", 0) / max(prompts_total, 1), 4), "valid records / prompts (all batches run, incl. resumed)")
        ctx.add_figure("rejections", rejects, "count per reason; every rejected output is in quarantine/ with its reason")
        ctx.add_figure("generated_tokens", stats.get("tokens", 0), "completion tokens counted by the backend tokenizer")
        if records:
            fid = sum(r.scores["label_fidelity"] for r in records) / len(records)
            present = sum(r.scores["conditioned_label_present"] for r in records) / len(records)
            ctx.add_figure("label_fidelity", round(fid, 4), "mean Jaccard(conditioned labels, labels the finding detector finds in the text); records are labelled by the detector")
            ctx.add_figure("conditioned_label_present", round(present, 4), "share of records whose text mentions at least one conditioned label")
            lab_syn = Counter(lab for r in records for lab in r.labels)
            lab_seed = Counter(lab for r in seeds for lab in r.labels)
            ctx.add_section("label_distribution", {"synthetic": {k: v / len(records) for k, v in lab_syn.items()},
                                                   "seeds": {k: v / len(seeds) for k, v in lab_seed.items()}})
            ctx.add_figure("normal_share", round(lab_syn.get("normal", 0) / len(records), 4), f"share of synthetic records labelled normal (seeds: {p_normal:.3f})")
            ctx.add_figure("spans", sum(len(r.spans) for r in records), "FINDING / NEGATED_FINDING / NEGATION_CUE spans, all verified text[start:end] == span.text")
        if unknown:
            ctx.add_figure("labels_without_seed", unknown, "labels of the label set that no seed carries (generated without examples)")
        ctx.write_output(records)


class ExportConfig(StepConfig):
    type: Literal["export"] = "export"
    formats: list[Literal["jsonl", "conll", "brat", "spacy", "hf"]] = Field(default_factory=lambda: ["jsonl", "conll", "brat"])


@STEPS.register("export")
class ExportStep(Step):
    """Write the input records as JSONL / CoNLL-BIO / BRAT / spaCy DocBin / HF datasets into the step folder."""

    type = "export"
    Config = ExportConfig

    def run(self, ctx: Any) -> None:
        from .export import export_records

        c: ExportConfig = self.config  # type: ignore[assignment]
        recs = ctx.input()
        bad = [r for r in recs if invalid_spans(r)]
        for r in bad:
            ctx.quarantine(r, "invalid_span", "export")
        good = [r for r in recs if not invalid_spans(r)]
        paths = export_records(good, ctx.step_dir / "export", list(c.formats))
        for p in paths.values():
            ctx.add_artifact(p)
        ctx.add_figure("exported_records", len(good), f"records written as {', '.join(c.formats)} under {ctx.step_dir.name}/export (records with an invalid span are quarantined, never exported: {len(bad)})")
        ctx.write_output(good)
