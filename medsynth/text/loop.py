"""The generation loop of one batch: jobs in, parsed documents out.

:class:`BatchGenerator` takes a batch of planned jobs (every strategy has already planned them) and a backend, and
returns a :class:`BatchResult`:

1. with ``entity_first`` in sentence mode, one sentence per planned unit, checked and retried, assembled into the
   document's prefix (:meth:`BatchGenerator.sentences`);
2. one document prompt per job, with in-context examples dropped (last first) until it fits the context window;
3. the documents generated and parsed by the task; a document missing its closing section gets one short
   continuation (``repair``).

It holds no run state: resume, deduplication, record building, commits and the report are the ``generate`` step's
(:mod:`medsynth.steps.text`). Token and rejection counts go to the result's ``stats`` under the step's keys
(``tokens``, ``sentence_tokens``, ``sentence_rejected:<why>``, ``repaired:<what>``, ``planned_units``, ...).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

from .backends.base import GenParams

__all__ = ["BatchGenerator", "BatchResult"]


class _NoCompletion:
    """Stands for a completion when no document stage ran (entity-first sentences are the whole document)."""

    text = ""
    finish_reason = "stop"
    completion_tokens = 0
    meta: dict[str, Any] = {}


@dataclass
class BatchResult:
    """``prompts``: job index → the document prompt; ``parsed``: job index → (the task's parse result, the
    completion); ``failed``: job index → why no document could be made; ``stats``: counts of this batch."""

    prompts: dict[int, str] = field(default_factory=dict)
    parsed: dict[int, tuple[Any, Any]] = field(default_factory=dict)
    failed: dict[int, str] = field(default_factory=dict)
    stats: Counter[str] = field(default_factory=Counter)


@dataclass
class BatchGenerator:
    """Turns planned jobs into parsed documents with one backend (see the module docstring).

    ``doc_params``, ``close_params`` and ``sent_params`` are the decoding parameters of the document, closing-section
    and sentence calls; :meth:`run` derives each batch's seeds from them."""

    task: Any
    env: Any
    strategies: list[Any]
    schema: Any
    entity_first: Any | None
    sentence_mode: bool
    repair: bool
    doc_params: GenParams
    close_params: GenParams
    sent_params: GenParams

    def run(self, jobs: list[Any], backend: Any, batch_seed: int) -> BatchResult:
        from .prompts.base import Job
        from .tasks import ParseResult

        res = BatchResult()
        st = res.stats
        doc = self.doc_params.model_copy(update={"seed": batch_seed})
        close = self.close_params.model_copy(update={"seed": batch_seed + 1})
        sent = self.sent_params.model_copy(update={"seed": batch_seed + 2})
        if self.sentence_mode:
            self.sentences(jobs, backend, sent, st, res.failed)
        for i, job in enumerate(jobs):
            if i in res.failed:
                continue
            if self.sentence_mode and not self.schema.document.close:  # the assembled sentences are the document
                res.parsed[i] = (ParseResult(job.prefix, None), _NoCompletion())
                continue
            res.prompts[i] = self.fit(self.task.render(job, self.env, self.strategies), job, backend, doc.max_new_tokens, st)
        order = sorted(res.prompts)
        comps = dict(zip(order, backend.generate([res.prompts[i] for i in order], doc), strict=True)) if order else {}
        for comp in comps.values():
            st["tokens"] += comp.completion_tokens
        needs: list[int] = []
        for i in order:
            comp = comps[i]
            if comp.finish_reason == "error":
                res.failed[i] = str(comp.meta.get("error", "backend_error"))
                continue
            pr = self.task.parse(comp.text, comp.finish_reason, jobs[i], allow_continue=self.repair)
            res.parsed[i] = (pr, comp)
            if pr.text is not None and pr.needs_close:
                needs.append(i)
        if needs:  # repair: one short continuation for the missing closing section
            cprompts = [self.task.continuation_prompt(res.prompts[i], jobs[i], res.parsed[i][0].text) for i in needs]
            for i, cc in zip(needs, backend.generate(cprompts, close), strict=True):
                st["tokens"] += cc.completion_tokens
                if cc.finish_reason == "error":
                    res.failed[i] = str(cc.meta.get("error", "backend_error"))
                    continue
                first = res.parsed[i][0]
                cont_job = Job(batch=jobs[i].batch, index=i, rng=jobs[i].rng, notes=jobs[i].notes, prefix=first.text)
                pr2 = self.task.parse(cc.text, cc.finish_reason, cont_job, allow_continue=False)
                pr2.repairs = first.repairs + ["close_continued"] + pr2.repairs
                res.parsed[i] = (pr2, cc)
        return res

    def fit(self, prompt: str, job: Any, backend: Any, max_new: int, stats: Counter[str]) -> str:
        """Drop in-context examples (last first) until the prompt fits the context window; the backend rejects
        (``prompt_too_long``) what still does not fit."""
        ctxlen = backend.context_length
        if not ctxlen:
            return prompt
        n = len(job.examples)
        while n > 0 and backend.count_tokens(prompt) + max_new > ctxlen:
            n -= 1
            stats["repaired:examples_dropped_for_context"] += 1
            prompt = self.task.render(job, self.env, self.strategies, n_examples=n)
        return prompt

    def sentences(self, jobs: list[Any], backend: Any, params: GenParams, stats: Counter[str], failed: dict[int, str]) -> None:
        """Entity-first sentence mode: one sentence per unit, checked and retried; then the document prefix."""
        from .prompts.base import rng_for

        ef, env = self.entity_first, self.env
        assert ef is not None
        got: dict[tuple[int, int], str] = {}
        todo = [(i, u) for i, job in enumerate(jobs) for u in range(len(job.plan.units))]
        seeds_used: dict[int, set[str]] = defaultdict(set)
        for attempt in range(ef.options.retries + 1):
            if not todo:
                break
            prompts = []
            shared = ef.shared_block(env, rng_for(env.seed, "sentence-shared", jobs[0].batch, attempt))  # one block per round: encoded once
            for i, u in todo:
                rng = rng_for(env.seed, "sentence", jobs[i].batch, i, u, attempt)
                p, sids = ef.sentence_prompt(jobs[i].plan.units[u], env, rng, shared)
                prompts.append(p)
                seeds_used[i] |= set(sids)
            comps = backend.generate(prompts, params.model_copy(update={"seed": params.seed + 7919 * attempt}))
            nxt = []
            for (i, u), comp in zip(todo, comps, strict=True):
                stats["sentence_prompts"] += 1
                stats["sentence_tokens"] += comp.completion_tokens
                if comp.finish_reason == "error":
                    stats["sentence_rejected:" + str(comp.meta.get("error", "backend_error"))] += 1
                    nxt.append((i, u))
                    continue
                s, why = ef.check_sentence(jobs[i].plan.units[u], comp.text, comp.finish_reason, env)
                if s is None:
                    stats["sentence_rejected:" + str(why)] += 1
                    nxt.append((i, u))
                else:
                    got[(i, u)] = s
            todo = nxt
        for i, job in enumerate(jobs):
            units = job.plan.units
            ok = [(units[u], got[(i, u)]) for u in range(len(units)) if (i, u) in got]
            missing = [u for u in range(len(units)) if (i, u) not in got and units[u].kind == "entity"]
            stats["planned_units"] += len(units)
            stats["planned_units_written"] += len(ok)
            if missing:
                stats["entity_units_missing"] += len(missing)
            if not ok:
                failed[i] = "no_sentences"
                continue
            job.prefix = ef.assemble(job, ok, env)
            job.sentence_texts = [s for _, s in ok]
            job.notes["seed_record_ids"] = sorted(set(job.notes.get("seed_record_ids", [])) | seeds_used[i])
