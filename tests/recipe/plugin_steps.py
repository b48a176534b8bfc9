"""Test-only steps, loaded through MEDSYNTH_PLUGINS (exercises the plugin mechanism too)."""

from __future__ import annotations

import os
import random
import time
from typing import Literal

from medsynth.data.records import Provenance, Record
from medsynth.recipe.step import Step, StepConfig, StepPlan, register_step


class MakeConfig(StepConfig):
    type: Literal["test_make"] = "test_make"
    n: int = 10


@register_step
class MakeStep(Step):
    Config = MakeConfig

    def plan(self, input_sizes):
        return StepPlan(records_out=self.config.n)

    def run(self, ctx):
        ctx.write_output([Record(id=f"r{i}", text=f"record number {i}", labels=["even" if i % 2 == 0 else "odd"], meta={"split": "train" if i % 5 else "test"}) for i in range(self.config.n)])


class SlowConfig(StepConfig):
    type: Literal["test_slow"] = "test_slow"
    batch_size: int = 2
    sleep: float = 0.0
    fail_at_batch: int | None = None


@register_step
class SlowStep(Step):
    """Batched, seeded 'generation': each batch sleeps, then emits one record per input with seeded content."""

    Config = SlowConfig

    def run(self, ctx):
        c = self.config
        recs = ctx.input()
        n_batches = (len(recs) + c.batch_size - 1) // c.batch_size
        with ctx.progress(len(recs), "slow", completed=ctx.n_committed() * c.batch_size) as bar:
            for b in ctx.pending_batches(n_batches):
                if c.fail_at_batch is not None and b == c.fail_at_batch and not os.environ.get("TEST_NO_FAIL"):
                    raise RuntimeError("planned failure")
                time.sleep(c.sleep)
                rng = random.Random(ctx.seed * 1000 + b)
                out = []
                for r in recs[b * c.batch_size:(b + 1) * c.batch_size]:
                    out.append(Record(id=f"syn-{r.id}", text=f"{r.text} {rng.random():.6f}", labels=r.labels,
                                      provenance=Provenance(step=ctx.step_name, seed_record_ids=[r.id], params={"batch": b})))
                    if r.id == "r3":
                        ctx.quarantine(out[-1], "test_reason", "test")
                ctx.commit_batch(b, out)
                bar.advance(len(out), tokens=10 * len(out))
        ctx.add_figure("n", len(ctx.committed()), "count of committed records")
        ctx.write_output(ctx.committed())
