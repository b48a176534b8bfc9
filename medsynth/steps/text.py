"""The ``generate`` step (the ``export`` step is in :mod:`.export`).

``generate``: labelled synthetic clinical texts from scrubbed seed records and a schema, with a local LLM (or an
OpenAI-compatible server). Each batch of jobs goes through (stage 2 is the library's
:class:`medsynth.text.loop.BatchGenerator`; this step orchestrates batches, resume, records and the report):

1. **plan** — every strategy of ``strategies:`` (medsynth/text/prompts/, one file each) contributes in stage
   order: target labels (``prior``, ``label``), wording (``verbalizer``), mentions and relations
   (``entity_first``), attribute values (``attributes``), in-context examples (``fewshot``, ``feedback``);
2. **generate** — with ``entity_first`` in sentence mode, one sentence per planned entity group and context
   sentences first (checked, retried), then the document prompt (a document to continue: the base model is not
   instruction-tuned); a document missing its closing section gets one short continuation (``repair``);
3. **parse and check** — repairs and rejections are counted by reason; copies of an in-context seed, duplicates,
   garbage and texts without a label are quarantined with the reason, never dropped silently;
4. **annotate and verify** — the schema's annotator gives spans, relations and labels from the text itself;
   ``verify`` decides what to do when they differ from the plan; span integrity (medsynth/text/spans.py) makes
   sure no invalid span is ever written.

Batches are committed one by one (resume at the first unfinished batch); the strategies' state is rebuilt from
the committed batches, so a resumed run plans the same prompts. The report gives records asked/written, the
shortfall if any, the valid-record yield (valid / documents attempted), rejections and repairs per reason, the
span-integrity counts, label fidelity and the label distribution next to the seeds'.

Why over 500 lines: the step's orchestration (resume, dedup, record building, span integrity, the report)
is one flow around :class:`medsynth.text.loop.BatchGenerator`.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections import Counter, defaultdict
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ..data.records import Provenance, Record, invalid_spans
from ..deprecation import renamed_keys
from ..exceptions import ModelNotAvailableError, RecipeError
from ..recipe.step import Step, StepConfig, StepPlan, register_step
from ..text.backends.base import GenParams
from ..text.models import DEFAULT_MODEL

if TYPE_CHECKING:  # pragma: no cover
    from ..recipe.engine import StepContext

__all__ = ["GenerateStep", "GenerateConfig", "SpanPolicy", "DEFAULT_STRATEGIES"]

DEFAULT_STRATEGIES: list[Any] = ["prior", "entity_first", "fewshot", "feedback", "verify"]


class SpanPolicy(BaseModel):
    model_config = ConfigDict(extra="forbid")
    overlaps: Literal["keep_longest", "keep_first", "allow_nested", "allow", "reject"] = "keep_longest"
    on_invalid: Literal["drop_span", "reject_record"] = Field("drop_span", description="an unrepairable span: drop it (counted) or reject the whole record")


class DedupConfig(BaseModel):
    """Streaming dedup of accepted texts (medsynth/text/dedup.py): exact (normalised text) and MinHash near
    duplicates of earlier outputs and, with ``against_seeds``, of any seed (not only the in-context ones)."""

    model_config = ConfigDict(extra="forbid")
    exact: bool = True
    near_threshold: float | None = Field(0.9, gt=0, le=1, description="word 3-gram Jaccard (MinHash estimate) that makes a near duplicate; null: exact only")
    against_seeds: bool = Field(True, description="also reject near copies of any seed (private text)")
    num_perm: int = Field(128, ge=16, le=1024)


class GenerateConfig(StepConfig):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    type: Literal["generate"] = "generate"
    task: Literal["classification", "ner", "relations"] = "classification"
    schema_name: str = Field("radiology", alias="schema", description="built-in schema (radiology, i2b2_2010) or a YAML/JSON schema file")
    model: str = Field(DEFAULT_MODEL, description="registry name (`medsynth models list`) or a local HF folder")
    backend: Literal["transformers", "openai", "llamacpp"] = "transformers"
    backend_options: dict[str, Any] = Field(default_factory=dict, description="e.g. {base_url: http://gpu-server:8000/v1} for openai; "
                                              "{dtype: float32, threads: 2} for transformers (default: the fastest measured on this machine)")
    adapter: str | None = Field(None, description="PEFT adapter: a folder, or step:<adapt step name> of this run")
    n: int = Field(100, ge=1, le=1_000_000, description="valid records to generate (`n_records:` is its deprecated old name)")
    max_attempts_factor: float = Field(2.0, ge=1.0, description="stop after n × factor documents even if fewer were valid (reported as shortfall)")
    strategies: list[Any] = Field(default_factory=lambda: list(DEFAULT_STRATEGIES), description="names, or {type: name, option: value}")
    labels: list[str] | None = Field(None, description="document label set (default: the labels of the seeds)")
    entity_markup: Literal["none", "inline"] = Field("none", description="inline: the model marks entities up itself as [mention](LABEL) (instruction-tuned models)")
    max_new_tokens: int = Field(110, ge=8, le=2048, description="tokens of a document completion")
    temperature: float = Field(0.8, ge=0.0, le=2.0)
    top_k: int = Field(40, ge=1)
    top_p: float = Field(0.95, gt=0, le=1)
    repetition_penalty: float | None = Field(None, ge=1.0)
    batch_size: int = Field(8, ge=1, le=256)
    min_chars: int = Field(40, ge=1)
    repair: bool = Field(True, description="complete a missing closing section (e.g. IMPRESSION) with one short continuation")
    close_tokens: int = Field(40, ge=4, le=512, description="tokens of that continuation")
    max_example_overlap: float = Field(0.6, gt=0, le=1, description="reject outputs whose word 3-gram Jaccard with an in-context seed reaches this (copying private text)")
    spans: SpanPolicy = Field(default_factory=SpanPolicy)
    dedup: DedupConfig = Field(default_factory=DedupConfig)
    cache: bool = Field(False, description="persistent content-addressed generation cache ($MEDSYNTH_HOME/cache/generations.sqlite): "
                        "re-running with more records or changed later steps re-uses every completion already generated")

    @model_validator(mode="before")
    @classmethod
    def _renamed(cls, data: Any) -> Any:
        return renamed_keys(data, "generate", {"n_records": "n"})

    @field_validator("strategies")
    @classmethod
    def _known_strategies(cls, v: list[Any]) -> list[Any]:
        from pydantic import ValidationError

        from ..registry import STRATEGIES
        from ..text.prompts import normalize_spec

        problems = []
        names = []
        for spec in v:
            try:
                name, opts = normalize_spec(spec)
            except RecipeError as e:
                problems.append(str(e))
                continue
            if name not in STRATEGIES:
                import difflib

                close = difflib.get_close_matches(name, STRATEGIES.names(), n=1)
                problems.append(f"unknown strategy '{name}'{f' (did you mean {close[0]!r}?)' if close else ''}; known: {', '.join(STRATEGIES.names())}")
                continue
            try:
                STRATEGIES.get(name).Config.model_validate(opts)
            except ValidationError as e:
                problems += [f"{name}.{'.'.join(map(str, x['loc']))}: {x['msg']}" for x in e.errors()]
            names.append(name)
        dup = [n for n, k in Counter(names).items() if k > 1]
        if dup:
            problems.append(f"strategy listed twice: {', '.join(dup)}")
        if problems:
            raise ValueError("; ".join(problems))
        return v

    def strategy_names(self) -> list[str]:
        from ..text.prompts import normalize_spec

        return [normalize_spec(s)[0] for s in self.strategies]


def _jaccard3(a: str, b: str) -> float:
    ta, tb = re.findall(r"\w+", a.lower()), re.findall(r"\w+", b.lower())
    ga = {tuple(ta[i : i + 3]) for i in range(len(ta) - 2)}
    gb = {tuple(tb[i : i + 3]) for i in range(len(tb) - 2)}
    return len(ga & gb) / len(ga | gb) if ga and gb else 0.0


@register_step
class GenerateStep(Step[GenerateConfig]):
    """Generate labelled synthetic texts from seed records (see the module docstring)."""

    Config = GenerateConfig
    version = "6"

    def check(self, recipe: Any) -> list[tuple[str, str]]:
        c = self.config
        probs: list[tuple[str, str]] = []
        if c.backend == "transformers":
            from ..registry import MODELS

            if c.model not in MODELS and not (Path(c.model).expanduser() / "config.json").exists():
                probs.append(("model", f"unknown model '{c.model}'; registered: {', '.join(MODELS.names())}, or give a local HF folder with config.json"))
        if c.backend == "openai" and "base_url" not in c.backend_options:
            probs.append(("backend_options.base_url", "the openai backend needs the server URL, e.g. http://gpu-server:8000/v1"))
        try:
            from ..text.schemas import load_schema

            load_schema(c.schema_name)
        except RecipeError as e:
            probs.append(("schema", str(e)))
        from ..text.prompts import build_strategies

        names = c.strategy_names()
        for s in build_strategies(c.strategies):
            for req in s.requires:
                if req not in names:
                    probs.append(("strategies", f"'{s.name}' needs '{req}' (add it to strategies:)"))
            probs += s.check(c)
        return probs

    def plan(self, input_sizes: dict[str, int | None]) -> StepPlan:
        c = self.config
        sentence = "entity_first" in c.strategy_names()
        per_doc = (c.close_tokens + 5 * 22) if sentence else c.max_new_tokens * 0.8
        tokens = int(math.ceil(c.n * 1.15) * per_doc)
        tps = 40.0 if c.backend == "transformers" else 400.0
        return StepPlan(records_in=next(iter(input_sizes.values()), None), records_out=c.n, est_tokens=tokens,
                        est_seconds=tokens / tps + 15, notes=[f"GUESS: ~{tps:.0f} tokens/s assumed for {c.model} at batch {c.batch_size} (not measured on this machine)"])

    rate_unit = "records_out"

    def rate_key(self) -> dict[str, Any]:
        c = self.config
        return {"type": "generate", "version": self.version, "model": c.model, "backend": c.backend, "adapter": bool(c.adapter), "task": c.task,
                "strategies": c.strategy_names(), "backend_options": {k: v for k, v in c.backend_options.items() if k != "api_key"},
                "max_new_tokens": c.max_new_tokens, "close_tokens": c.close_tokens, "batch_size": c.batch_size, "markup": c.entity_markup}

    def _entity_first(self) -> Any:
        """The configured entity-first strategy, or None."""
        from ..text.prompts import build_strategies

        c = self.config
        return next((s for s in build_strategies(c.strategies) if s.name == "entity_first"), None)

    def _request_plan(self) -> list[tuple[int, int, int]]:
        """(requests, batch size, token limit) of each kind of request the step will make: entity-first writes ≈ 5
        sentences and one closing continuation per document; otherwise one document per request (× 1.15 attempts)."""
        c = self.config
        docs = math.ceil(c.n * 1.15)
        ef = self._entity_first()
        if ef is not None:
            return [(docs * 5, ef.options.sentence_batch_size, ef.options.max_sentence_tokens), (docs, c.batch_size, c.close_tokens)]
        return [(docs, c.batch_size, c.max_new_tokens)]

    def _calibration_prompt(self, kind: int, i: int) -> str:
        """The ``i``-th prompt of a calibration batch, shaped like the step's own: entity-first sentence requests show
        ``shared_examples`` "Mentions/Sentence" pairs common to the batch, then their own pairs; documents and closings
        are few-shot reports (about 350 tokens) whose first part is common to the batch. The common part lets the
        backend's prefix sharing work as it does in the run."""
        ef = self._entity_first()
        if ef is not None and kind == 0:
            pair = "Mentions: finding: pleural effusion (left, small)\nSentence: There is a small left pleural effusion.\n\n"
            own = f"Mentions: finding: nodule ({i + 2} mm)\nSentence: There is a {i + 2} mm nodule in the right upper lobe.\n\n"
            n_shared = min(ef.options.shared_examples, ef.options.sentence_examples)
            return ("Chest radiograph reports: single sentences, each after the list of what it mentions.\n\n" + pair * n_shared
                    + own * max(ef.options.sentence_examples - n_shared, 1) + "Mentions: finding: cardiomegaly\nSentence:")
        report = ("FINDINGS: The heart size is normal. The mediastinal contours are within normal limits. There is no focal consolidation, "
                  "pleural effusion or pneumothorax. Mild degenerative changes of the thoracic spine. IMPRESSION: No acute cardiopulmonary process.\n")
        own = (f"FINDINGS: Stable {i + 2} mm nodule in the right upper lobe. The heart is mildly enlarged. No pleural effusion. "
               f"IMPRESSION: {i + 2} mm nodule, unchanged. Mild cardiomegaly.\n")
        return report * 5 + own * 3 + f"Report {i}:"

    def calibrate(self, home: Any) -> dict[str, Any] | None:
        """Seconds per batch of this machine for each kind of request the step makes: one real batch per kind on the
        configured model, with prompts shaped like the step's (:meth:`_calibration_prompt`) and the request's token limit."""
        import time

        from ..registry import BACKENDS
        from ..text.backends.base import GenParams

        c = self.config
        if c.backend != "transformers":
            return None
        try:
            backend = BACKENDS.get(c.backend)(model=c.model, **dict(c.backend_options))
        except (OSError, ModelNotAvailableError):
            return None
        kinds = []
        for kind, (_, bs, toks) in enumerate(self._request_plan()):
            params = GenParams(max_new_tokens=toks, temperature=c.temperature, top_k=c.top_k, top_p=c.top_p, seed=0, batch_size=bs)
            full = [self._calibration_prompt(kind, i) for i in range(bs)]
            for prompts in (full, [p[-300:] for p in full]):  # a small model's context may not hold the full-length prompt
                backend.generate(prompts[: min(2, bs)], params.model_copy(update={"max_new_tokens": 4}))  # warm-up (first-call overhead)
                t0 = time.perf_counter()
                comps = backend.generate(prompts, params)
                dt = time.perf_counter() - t0
                n_tok = sum(x.completion_tokens for x in comps if x.finish_reason != "error")
                if n_tok and dt > 0:
                    kinds.append({"batch_size": bs, "max_new_tokens": toks, "seconds_per_batch": round(dt, 3), "tokens_per_s": round(n_tok / dt, 1)})
                    break
            else:
                return None
        return {"kinds": kinds}

    def estimate_from_calibration(self, cal: dict[str, Any]) -> tuple[float, str]:
        plan = self._request_plan()
        total, parts = 0.0, []
        for (n, bs, toks), k in zip(plan, cal["kinds"], strict=True):
            batches = math.ceil(n / bs)
            total += batches * k["seconds_per_batch"]
            parts.append(f"{n} requests of ≤ {toks} tokens in {batches} batches of {bs} × {k['seconds_per_batch']:.1f} s")
        return total + 15, "; ".join(parts)

    def cache_key_extra(self) -> dict[str, Any]:
        c = self.config
        extra: dict[str, Any] = {}
        if c.schema_name not in ("radiology", "i2b2_2010") and Path(c.schema_name).expanduser().exists():
            extra["schema_sha256"] = hashlib.sha256(Path(c.schema_name).expanduser().read_bytes()).hexdigest()
        if c.backend != "transformers":
            return {**extra, "backend": c.backend_options.get("base_url") or c.model}
        try:
            from ..text.models import model_info

            extra["model_sha256"] = model_info(c.model).get("model_sha256")
        except Exception:  # noqa: BLE001  (no cached model yet: the key still changes when it is prepared)
            pass
        return extra

    def _backend(self, ctx: StepContext) -> Any:
        c = self.config
        from ..registry import BACKENDS

        opts = dict(c.backend_options)
        if c.backend == "transformers":
            opts.setdefault("adapter", c.adapter)
            if c.adapter:
                opts.setdefault("run_dir", str(ctx.run_dir))
        try:
            inner = BACKENDS.get(c.backend)(model=c.model, **opts)
        except ModelNotAvailableError:
            raise
        except OSError as e:
            raise ModelNotAvailableError(f"Could not load model '{c.model}' ({type(e).__name__}). Run `medsynth models prepare {c.model} --force`.") from None
        if not c.cache:
            return inner
        from ..text.backends.cache import CachedBackend

        return CachedBackend(inner)

    # ---------------------------------------------------------------------------------------------------------------
    def run(self, ctx: StepContext) -> None:
        from ..text.prompts import StrategyEnv, build_strategies
        from ..text.prompts.base import Job, rng_for
        from ..text.schemas import load_schema
        from ..text.tasks import get_task

        c = self.config
        schema = load_schema(c.schema_name)
        has_doc_labels = any(e.doc_label for e in schema.entities)
        raw = ctx.input()
        seeds = [r for r in raw if r.text and r.text.strip()]
        if not seeds:
            raise RecipeError(f"Step '{ctx.step_name}': the input dataset has {len(raw)} records and none with text. Give at least one seed "
                              "document (e.g. `select` with `sample:` on a source, or `load` of a JSONL file with a `text` field).")
        if has_doc_labels:
            from ..text.schemas import doc_labels

            seeds = [r if r.labels else r.model_copy(update={"labels": doc_labels(r.text or "", schema)}) for r in seeds]
        seed_labels = sorted({lab for r in seeds for lab in r.labels})
        label_set = list(c.labels) if c.labels else (seed_labels if has_doc_labels else [])
        use = c.strategy_names()
        if "verify" in use and has_doc_labels:
            detectable = set(schema.doc_label_values) | ({schema.normal_label} if schema.normal_label else set())
            blind = [lab for lab in label_set if lab not in detectable]
            if blind:
                raise RecipeError(f"Step '{ctx.step_name}': label(s) {', '.join(map(repr, blind[:6]))} are not in schema '{schema.name}'s lexicon, so `verify` "
                                  "could never assign them. Add them to the schema (a lexicon entry), remove them from `labels:`, or drop `verify`.")
        without_seed = [lab for lab in label_set if lab not in seed_labels]
        task = get_task(c.task, schema, label_set=label_set, output="inline" if c.entity_markup == "inline" else "plain", min_chars=c.min_chars)
        strategies = build_strategies(c.strategies)
        backend_box: dict[str, Any] = {}

        def get_backend() -> Any:
            if "b" not in backend_box:
                backend_box["b"] = self._backend(ctx)
                ctx.add_model(backend_box["b"].model_id, backend_box["b"].model_sha256 or "")
            return backend_box["b"]

        env = StrategyEnv(schema=schema, task=task, seeds=seeds, label_set=label_set, seed=ctx.seed, backend_factory=get_backend,
                          gen_defaults={"top_k": c.top_k, "top_p": c.top_p, "batch_size": c.batch_size}, active=use, step_name=ctx.step_name)
        for s in strategies:
            s.setup(env)
        entity_first = next((s for s in strategies if s.name == "entity_first"), None)
        sentence_mode = env.sentence_mode and entity_first is not None

        # -- rebuild state from committed batches (resume) ------------------------------------------------------------
        committed = ctx.committed()
        by_batch: dict[int, list[Record]] = defaultdict(list)
        for r in committed:
            by_batch[int(r.provenance.params.get("batch", 0))].append(r)
        stats: Counter[str] = Counter()
        for m in ctx.committed_meta().values():
            stats.update(m.get("stats", {}))
        for b in sorted(by_batch):
            self._observe(env, strategies, by_batch[b], b)
        valid = len(committed)
        from ..text.dedup import Deduplicator

        dd = Deduplicator(threshold=c.dedup.near_threshold or 1.0, num_perm=c.dedup.num_perm, exact=c.dedup.exact, near=c.dedup.near_threshold is not None)
        seed_ids = {r.id for r in seeds}
        if c.dedup.against_seeds:
            dd.preload(seeds)
        dd.add_many([(r.id, r.text or "") for r in committed])  # resume: the same index as before the interruption
        bs = c.batch_size
        max_batches = math.ceil(c.n * c.max_attempts_factor / bs)
        doc_params = GenParams(max_new_tokens=c.max_new_tokens if not sentence_mode else c.close_tokens, temperature=c.temperature, top_k=c.top_k,
                               top_p=c.top_p, repetition_penalty=c.repetition_penalty, stop=list(schema.document.stop) if not sentence_mode else ["\n"],
                               seed=ctx.seed, batch_size=bs)
        close_params = doc_params.model_copy(update={"max_new_tokens": c.close_tokens, "stop": ["\n"]})
        sent_params = doc_params.model_copy(update={"max_new_tokens": entity_first.options.max_sentence_tokens if entity_first else 32, "stop": ["\n"],
                                                    "batch_size": entity_first.options.sentence_batch_size if entity_first else bs})

        from ..text.loop import BatchGenerator

        gen = BatchGenerator(task=task, env=env, strategies=strategies, schema=schema, entity_first=entity_first, sentence_mode=sentence_mode,
                             repair=c.repair, doc_params=doc_params, close_params=close_params, sent_params=sent_params)
        with ctx.progress(c.n, f"generate ({c.model})", completed=min(valid, c.n)) as bar:
            for b in ctx.pending_batches(max_batches):
                if valid >= c.n:
                    break
                backend = get_backend()
                bseed = int.from_bytes(hashlib.sha256(f"{ctx.seed}:batch:{b}".encode()).digest()[:4], "big")
                jobs = [Job(batch=b, index=j, rng=rng_for(ctx.seed, b, j)) for j in range(self._batch_jobs(c.n - valid, bs, stats))]
                for job in jobs:
                    for s in strategies:
                        s.plan(job, env)
                res = gen.run(jobs, backend, bseed)
                bstats, prompts, parsed, failed = res.stats, res.prompts, res.parsed, res.failed
                out: list[Record] = []
                for i, job in enumerate(jobs):
                    rid = f"{ctx.step_name}-{b:05d}-{i:02d}"
                    prov = self._provenance(ctx, c, backend, job, prompts.get(i, ""), use)
                    bstats["documents"] += 1
                    if i in failed:
                        self._reject(ctx, bstats, Record(id=rid, text=None, provenance=prov, meta={"plan": job.plan.to_json()}), failed[i])
                        continue
                    pr, comp = parsed[i]
                    for rp in pr.repairs:
                        bstats["repaired:" + rp] += 1
                    if pr.text is None:
                        self._reject(ctx, bstats, Record(id=rid, text=task.head_of_completion(job) + comp.text, provenance=prov), pr.reason or "unparsable")
                        continue
                    rec, reason = self._record(rid, pr, comp, job, env, strategies, task, c, prov, dd, seed_ids, bstats, "verify" in use)
                    if reason is not None:
                        self._reject(ctx, bstats, rec, reason)
                        continue
                    dd.add(rec.id, rec.text or "")
                    out.append(rec)
                    bstats["valid"] += 1
                ctx.commit_batch(b, out, {"stats": dict(bstats)})
                stats.update(bstats)
                self._observe(env, strategies, out, b)
                before = valid
                valid += len(out)
                bar.advance(min(len(out), max(c.n - before, 0)), tokens=bstats["tokens"] + bstats["sentence_tokens"])
        if "b" in backend_box:
            self._runtime_figures(ctx, getattr(backend_box["b"], "inner", backend_box["b"]))
            if c.cache and hasattr(backend_box["b"], "stats"):
                cs = backend_box["b"].stats()
                ctx.add_figure("generation_cache", {k: cs.get(k) for k in ("hits", "misses", "stored", "entries")},
                               "completions served from / added to the persistent generation cache in this run (key: model identity, prompt, decoding params, seed)")
            backend_box["b"].close()
        ds = dd.stats()
        dup_counts = {k.split(":", 1)[1]: v for k, v in stats.items() if k.startswith("rejected:") and "_duplicate" in k}
        ctx.add_figure("dedup", {"indexed_outputs": ds.get("unique"), "preloaded_seeds": ds.get("preloaded"), "rejected": dup_counts},
                       f"streaming dedup of accepted texts: exact (normalised) and MinHash near duplicates at word 3-gram Jaccard ≥ {c.dedup.near_threshold}"
                       + (", seeds preloaded" if c.dedup.against_seeds else "") + "; duplicates are rejected (see rejections)")
        self._report(ctx, c, env, seeds, label_set, without_seed, stats, sentence_mode)

    @staticmethod
    def _batch_jobs(need: int, bs: int, stats: Counter[str]) -> int:
        """Documents to attempt in the next batch: a full batch, or near the end only as many as the remaining records
        need at the yield seen so far (+1), so the run stops close to ``n`` instead of generating surplus. A
        function of the committed batches only, so a resumed run plans the same batches."""
        done = stats.get("documents", 0)
        yld = min(max(stats.get("valid", 0) / done, 0.25), 1.0) if done >= bs else 0.8
        return max(1, min(bs, math.ceil(need / yld) + 1))

    @staticmethod
    def _runtime_figures(ctx: StepContext, backend: Any) -> None:
        """How the local model ran: dtype and threads (and how they were chosen), prompt tokens given vs encoded
        (prefix sharing), generated tokens vs decoding slots (batch occupancy)."""
        rt = getattr(backend, "runtime", None)
        if rt:
            how = {"measured": "measured on this machine at first use (text/runtime.py)", "cached": "measured earlier on this machine, same CPU and model",
                   "given": "set by the recipe (backend_options) or the caller", "MEDSYNTH_DTYPE": "set by the MEDSYNTH_DTYPE environment variable"}
            ctx.add_figure("generation_runtime", {k: rt.get(k) for k in ("dtype", "threads", "how", "candidates")},
                           f"dtype and CPU threads of the local model: {how.get(str(rt.get('how')), rt.get('how'))}; candidates are seconds for "
                           "the same encode + greedy-decode workload")
        st = getattr(backend, "stats", None)
        if isinstance(st, Counter) and st.get("prompt_tokens"):
            enc = st["prompt_tokens_encoded"] / st["prompt_tokens"]
            occ = st["completion_tokens"] / max(st["decode_slots"], 1)
            ctx.add_figure("generation_tokens", {"prompt_tokens": st["prompt_tokens"], "prompt_tokens_encoded": st["prompt_tokens_encoded"],
                                                 "encoded_share": round(enc, 3), "generated_tokens": st["completion_tokens"],
                                                 "decoding_slots": st["decode_slots"], "slot_occupancy": round(occ, 3),
                                                 "batches": st["batches"], "rows_continued": st["continued_rows"]},
                           "prompt tokens actually encoded (a prefix shared by a batch is encoded once) and the share of decoding slots "
                           "that produced a kept token (a batch decodes until its longest row stops); counted by the backend")

    # ---------------------------------------------------------------------------------------------------------------
    @staticmethod
    def _observe(env: Any, strategies: list[Any], records: list[Record], batch: int) -> None:
        env.observed.update(lab for r in records for lab in r.labels)
        env.n_observed += len(records)
        for s in strategies:
            s.observe(records, batch, env)

    @staticmethod
    def _reject(ctx: StepContext, bstats: Counter[str], rec: Record, reason: str) -> None:
        bstats["rejected:" + reason] += 1
        ctx.quarantine(rec, reason, "generate")

    def _provenance(self, ctx: StepContext, c: GenerateConfig, backend: Any, job: Any, prompt: str, use: list[str]) -> Provenance:
        notes = {k: v for k, v in job.notes.items() if not k.startswith("_")}
        seed_ids = notes.pop("seed_record_ids", [])
        return Provenance(step=ctx.step_name, generator=f"{c.backend}:{backend.model_id}", model_sha256=backend.model_sha256,
                          prompt_id=hashlib.sha256(prompt.encode()).hexdigest()[:16], strategy=list(use),
                          seed_record_ids=sorted(set(seed_ids)),
                          params={"batch": job.batch, "task": c.task, "schema": c.schema_name, "temperature": c.temperature, "top_k": c.top_k,
                                  "top_p": c.top_p, "max_new_tokens": c.max_new_tokens, "seed": ctx.seed, **notes})

    def _record(self, rid: str, pr: Any, comp: Any, job: Any, env: Any, strategies: list[Any], task: Any, c: GenerateConfig,
                prov: Provenance, dd: Any, seed_ids: set[str], bstats: Counter[str], verify: bool) -> tuple[Record, str | None]:
        from ..text.spans import SpanStats, enforce

        text = pr.text
        rec = Record(id=rid, kind="text", text=text, provenance=prov, meta={"plan": job.plan.to_json(), "finish_reason": comp.finish_reason})
        seed_exs = [e for e in job.examples if e.id in env.seed_by_id]
        if seed_exs and max(_jaccard3(text, e.text or "") for e in seed_exs) >= c.max_example_overlap:
            return rec, "copies_prompt_example"
        dup = dd.check(rid, text)
        if dup.duplicate_of is not None:
            rec.meta["duplicate_of"] = dup.duplicate_of
            return rec, f"{dup.reason}_duplicate" + ("_of_seed" if dup.duplicate_of in seed_ids else "")
        labels, spans, relations = task.annotate(text)
        if pr.model_spans:  # inline output: the model's own spans, merged with the annotator's
            spans = spans + [s for s in pr.model_spans if not any((s.start, s.end, s.label) == (o.start, o.end, o.label) for o in spans)]
        st = SpanStats()
        res = enforce(text, spans, relations, labels=task.span_labels, relation_types=task.relation_types, overlaps=c.spans.overlaps, stats=st)
        for k, v in st.counts.items():
            bstats["span_" + k] += v
        target = list(job.plan.labels)
        if not verify:
            labels = [lab for lab in target if lab in env.label_set] or labels
        planned = {e.text.lower() for e in job.plan.entities if not e.negated}
        low = text.lower()
        found = sum(1 for e in planned if e in low)
        tl, fl = set(target), set(labels)
        rec = rec.model_copy(update={
            "labels": labels, "spans": res.spans, "relations": res.relations,
            "scores": {"label_fidelity": round(len(tl & fl) / len(tl | fl), 4) if (tl | fl) else 1.0,
                       "conditioned_label_present": bool(tl & fl) if tl else True,
                       "planned_mention_recall": round(found / len(planned), 4) if planned else None,
                       "complete": True}})
        rec.meta["conditioned_on"] = target
        if (not res.ok) or (c.spans.on_invalid == "reject_record" and st.rejected and any(k not in ("duplicate",) for k in st.rejected)):
            return rec, "invalid_span"
        if invalid_spans(rec):  # never reached: enforce() verified every span; kept as the last line of defence
            return rec, "invalid_span"
        for s in strategies:
            why = s.accept(rec, job, env)
            if why:
                return rec, why
        if not env.label_set or not any(e.doc_label for e in env.schema.entities):
            return rec, None
        if not rec.labels:
            return rec, "no_label"
        return rec, None

    def _report(self, ctx: StepContext, c: GenerateConfig, env: Any, seeds: list[Record], label_set: list[str], without_seed: list[str],
                stats: Counter[str], sentence_mode: bool) -> None:
        records = ctx.committed()[: c.n]
        docs = stats.get("documents", 0)
        rejects = {k.split(":", 1)[1]: v for k, v in stats.items() if k.startswith("rejected:")}
        repairs = {k.split(":", 1)[1]: v for k, v in stats.items() if k.startswith("repaired:")}
        ctx.add_figure("records_asked", c.n, "n in the recipe")
        ctx.add_figure("records_generated", len(records), f"valid records kept (the first {c.n} in batch order)")
        if len(records) < c.n:
            ctx.add_figure("shortfall", c.n - len(records), f"FEWER valid records than asked after {docs} documents (max_attempts_factor={c.max_attempts_factor}); "
                           "see rejections and quarantine/")
        ctx.add_figure("yield", round(stats.get("valid", 0) / max(docs, 1), 4), "valid records / documents attempted (all batches run, incl. resumed); a document is valid if it parses, is complete, "
                       "is not a copy or duplicate, carries a label and all its spans verify")
        ctx.add_figure("rejections", rejects, "documents rejected, count per reason; every rejected output is in quarantine/ with its reason")
        ctx.add_figure("repairs", repairs, "documents repaired before validation, count per repair (cut_* = text after a runaway cut; close_continued = closing section written by a second, short continuation)")
        span_rej = {k[len("span_rejected:"):]: v for k, v in stats.items() if k.startswith("span_rejected:")}
        span_rep = {k[len("span_repaired:"):]: v for k, v in stats.items() if k.startswith("span_repaired:")}
        ctx.add_figure("span_integrity", {"rejected": span_rej, "repaired": span_rep}, "spans dropped/repaired by span integrity (medsynth/text/spans.py) before records were written; every written span satisfies text[start:end] == span.text")
        tok = stats.get("tokens", 0) + stats.get("sentence_tokens", 0)
        ctx.add_figure("generated_tokens", tok, "completion tokens counted by the backend (documents, continuations and entity-first sentences)")
        if sentence_mode:
            sp = stats.get("sentence_prompts", 0)
            srej = {k.split(":", 1)[1]: v for k, v in stats.items() if k.startswith("sentence_rejected:")}
            ctx.add_figure("sentence_requests", sp, "entity-first sentence requests (incl. retries)")
            ctx.add_figure("sentence_rejections", srej, "sentence requests whose output failed its checks (each unit is retried; see entity_first.retries)")
            ctx.add_figure("planned_units_written", round(stats.get("planned_units_written", 0) / max(stats.get("planned_units", 1), 1), 4),
                           "share of planned sentence units (entity groups + context sentences) for which a valid sentence was written")
        for name, value, how in env.figures:
            ctx.add_figure(name, value, how)
        for key, obj in env.sections.items():
            ctx.add_section(f"strategy_{key}", obj)
        if records:
            fid = sum(r.scores.get("label_fidelity", 0) for r in records) / len(records)
            present = sum(bool(r.scores.get("conditioned_label_present")) for r in records) / len(records)
            rec_ = [r.scores["planned_mention_recall"] for r in records if r.scores.get("planned_mention_recall") is not None]
            ctx.add_figure("label_fidelity", round(fid, 4), "mean Jaccard(target labels, labels the annotator finds in the text)" + ("; records are labelled by the annotator (verify)" if "verify" in c.strategy_names() else "; records keep their target labels (no verify)"))
            ctx.add_figure("conditioned_label_present", round(present, 4), "share of records whose text carries at least one target label")
            if rec_:
                ctx.add_figure("planned_mention_recall", round(sum(rec_) / len(rec_), 4), "mean share of planned mention strings found verbatim (case-insensitive) in the text")
            if label_set:
                lab_syn = Counter(lab for r in records for lab in r.labels)
                lab_seed = Counter(lab for r in seeds for lab in r.labels)
                dist = {"synthetic": {k: round(v / len(records), 4) for k, v in sorted(lab_syn.items())},
                        "seeds": {k: round(v / len(seeds), 4) for k, v in sorted(lab_seed.items())}}
                ctx.add_section("label_distribution", dist)
                keys = sorted(set(dist["synthetic"]) | set(dist["seeds"]))
                ctx.add_section("label_distribution_plot", {"plot": {"kind": "bars", "title": "label share: synthetic vs seeds",
                                                                     "series": {"synthetic": {k: dist["synthetic"].get(k, 0) for k in keys},
                                                                                "seeds": {k: dist["seeds"].get(k, 0) for k in keys}}},
                                                            "caption": "share of records carrying each label (multi-label), synthetic vs seeds"})
                if env.normal_label:
                    ctx.add_figure("normal_share", round(lab_syn.get(env.normal_label, 0) / len(records), 4), f"share of synthetic records labelled {env.normal_label}")
            ctx.add_figure("spans", sum(len(r.spans) for r in records), f"entity spans written ({c.task} task), all verified text[start:end] == span.text")
            if c.task == "relations":
                ctx.add_figure("relations", sum(len(r.relations) for r in records), "relations written, found by the schema's rules on the text")
        if without_seed:
            ctx.add_figure("labels_without_seed", without_seed, "labels of the label set that no seed carries (generated from the schema's label words; may never appear)")
            never = [lab for lab in without_seed if not any(lab in r.labels for r in records)]
            if never:
                ctx.add_figure("labels_never_generated", never, "labels of the label set that no generated record carries")
        ctx.write_output(records)
