"""Canary exposure (Carlini et al. 2019, "The Secret Sharer"): how much a fine-tuned generator memorised secrets it
saw during training.

1. :func:`make_canaries` writes ``n`` radiology-style reports, each carrying a random secret ``r`` drawn uniformly
   from a randomness space R (``digits`` decimal digits: ``|R| = 10**digits``, an MRN/accession-like number), each
   with its own report shell so that contexts differ. The ``adapt`` step inserts them into the private training
   documents ``repeats`` times each (a list of repeat counts is cycled over the canaries) before any training.
2. The audit scores, under the adapted model, ``log p(r | context)`` — the exact full-softmax log-likelihood of the
   secret's tokens given the training document up to the secret — for the true secret and for candidates r' ∈ R, and
   computes ``exposure = log2|R| − log2 rank(r)``, with rank 1 = the most likely secret.

   * ``|R| ≤ enumerate_max``: every candidate of R is scored; the rank is exact.
   * larger R: ``candidates`` secrets are drawn uniformly from R (seeded) and scored. Two estimates are reported:
     the *sampled* one, ``rank ≈ 1 + (|R|−1)·k/m`` for k of m candidates more likely than the canary (it cannot
     resolve exposures above ≈ log2 m: with k = 0 it reports log2|R| − log2(1 + (|R|−1)/(m+1))), and the
     *extrapolated* one of the paper (§4.3): a skew-normal distribution fitted to the candidates' log-likelihoods
     gives ``P(log p(r') > log p(r))`` and ``exposure = −log2`` of it (capped at log2|R|). The gate uses the
     extrapolated value, the sampled one is its check.

   A model that never saw a canary gives it a uniformly random rank: ``P(exposure ≥ x) = 2^-x``. The release fails
   when any canary's exposure reaches ``max_exposure`` (default ``log2(n_canaries / alpha)``: with α = 0.01 an
   unexposed set of canaries crosses it with probability ≤ 1%, Bonferroni over the canaries).

Canary records carry ``meta["canary"] = {secret, context, alphabet, length, space_size, repeats}``; the audit finds
them in the private dataset it is given (the adapt step's ``<name>_train`` output) or in ``canaries=`` of its
context. Findings name canary ids only; secrets are never logged.
"""

from __future__ import annotations

import itertools
import math
import random
from typing import Any

from pydantic import Field

from ..data.records import Provenance, Record
from ..registry import AUDITS
from .base import Audit, AuditPolicy, AuditResult, Finding

__all__ = ["CanaryExposureAudit", "CanaryPolicy", "make_canaries", "canary_exposures", "secret_logprobs", "CANARY_KEY"]

CANARY_KEY = "canary"
_ALPHABET = "0123456789"

# corpus-style shells (IU chest X-ray report register); the secret follows the identifier phrase
_HEART = ["The heart is normal in size.", "Heart size and mediastinal contours are within normal limits.",
          "The cardiomediastinal silhouette is unremarkable.", "Normal heart size.", "The cardiac silhouette is stable."]
_LUNGS = ["The lungs are clear.", "No focal consolidation, pleural effusion or pneumothorax.", "Lungs are clear bilaterally.",
          "No acute airspace disease.", "There is no pleural effusion."]
_ID = ["Comparison is made to the outside study with accession number", "Prior examination reference number",
       "Images were compared with outside film number", "Results were discussed with the ordering clinic, callback number",
       "Study requisition number"]
_IMPRESSION = ["IMPRESSION: No acute cardiopulmonary abnormality.", "IMPRESSION: Normal chest.", "IMPRESSION: No active disease.",
               "IMPRESSION: No acute findings."]


def make_canaries(n: int, repeats: int | list[int] = 1, digits: int = 6, seed: int = 0,
                  template: str = "Findings list: {labels}\n{text}") -> list[Record]:
    """``n`` canary records with secrets uniform in ``10**digits`` values. ``template`` must be the one the training
    documents are rendered with (the context scored by the audit is the rendered document up to the secret)."""
    from ..text.adapt.config import render_document

    if n < 1:
        return []
    if not 1 <= digits <= 18:
        raise ValueError(f"canaries.digits must be in 1..18 (got {digits}).")
    rng = random.Random(f"canary:{seed}")
    shells = list(itertools.product(range(len(_HEART)), range(len(_LUNGS)), range(len(_ID)), range(len(_IMPRESSION))))
    rng.shuffle(shells)
    reps = repeats if isinstance(repeats, list) else [repeats]
    out = []
    sentinel = "\u0000SECRET\u0000"
    for i in range(n):
        h, lu, idp, im = shells[i % len(shells)]
        secret = "".join(rng.choice(_ALPHABET) for _ in range(digits))
        pre = f"FINDINGS: {_HEART[h]} {_LUNGS[lu]} {_ID[idp]} "
        post = f". {_IMPRESSION[im]}"
        doc = render_document(pre + sentinel + post, ["normal"], template)
        context = doc.split(sentinel)[0]
        out.append(Record(id=f"canary-{i:03d}", kind="text", text=pre + secret + post, labels=["normal"],
                          provenance=Provenance(step="canary", strategy="canary", params={"seed": seed}),
                          meta={CANARY_KEY: {"secret": secret, "context": context, "alphabet": _ALPHABET, "length": digits,
                                             "space_size": 10**digits, "repeats": int(reps[i % len(reps)])}}))
    return out


class CanaryPolicy(AuditPolicy):
    enumerate_max: int = Field(2000, ge=1, description="score every secret of R exactly when |R| ≤ this (else sample)")
    candidates: int = Field(200, ge=10, description="candidates sampled uniformly from R per canary when R is larger")
    alpha: float = Field(0.01, gt=0, lt=1, description="false-alarm rate of the default threshold log2(n_canaries/alpha)")
    max_exposure: float | None = Field(None, gt=0, description="bits; release fails if a canary reaches it: protects against a generator that memorised secrets seen in training (default log2(n/alpha))")
    batch_size: int = Field(32, ge=1)
    max_canaries: int = Field(50, ge=1, description="canaries scored at most (seeded choice)")


def _model_and_tokenizer(context: dict[str, Any]) -> tuple[Any, Any]:
    if context.get("model") is not None and context.get("tokenizer") is not None:
        return context["model"], context["tokenizer"]
    b = context.get("backend")
    if b is not None and hasattr(b, "model") and hasattr(b, "tokenizer"):
        return b.model, b.tokenizer
    return None, None


def secret_logprobs(model: Any, tokenizer: Any, context: str, secrets: list[str], batch_size: int = 32) -> list[float]:
    """Exact ``log p(secret | context)`` (sum over the secret's tokens, full-vocabulary softmax) for each secret.

    Plain HF models: the context's KV cache is computed once and reused for every batch of candidates. peft
    prompt/prefix models (which add virtual tokens themselves): full forward passes."""
    import copy

    import torch

    ctx_ids = tokenizer(context, add_special_tokens=True)["input_ids"]
    rows = []
    for s in secrets:
        full = tokenizer(context + s, add_special_tokens=True)["input_ids"]
        lcp = 0
        while lcp < min(len(full), len(ctx_ids)) and full[lcp] == ctx_ids[lcp]:
            lcp += 1
        lcp = max(lcp, 1)
        rows.append((full, lcp))
    out = [0.0] * len(secrets)
    is_peft = hasattr(model, "peft_config")
    # group candidates with the same shared-prefix length and total length (one batch shape)
    groups: dict[tuple[int, int], list[int]] = {}
    for i, (full, lcp) in enumerate(rows):
        groups.setdefault((lcp, len(full)), []).append(i)
    import inspect

    fwd = inspect.signature(model.forward).parameters
    cache_kw = "cache" if "cache" in fwd else "past_key_values"  # transformers ≥ 5.2x renamed the argument
    was_training = model.training
    model.eval()
    with torch.inference_mode():
        for (lcp, n), idx in groups.items():
            k = n - lcp  # scored tokens
            cache = None
            if not is_peft:
                prefix = torch.tensor([rows[idx[0]][0][:lcp]])
                po = model(input_ids=prefix, use_cache=True, logits_to_keep=1)
                first_logits = po.logits[:, -1, :].float()
                cache = getattr(po, "cache", None) or po.past_key_values
            for b0 in range(0, len(idx), batch_size):
                bi = idx[b0 : b0 + batch_size]
                x = torch.tensor([rows[i][0] for i in bi])
                if cache is not None:
                    c = copy.deepcopy(cache)
                    c.batch_repeat_interleave(len(bi))
                    tail = x[:, lcp:]
                    o = model(input_ids=tail, use_cache=True, **{cache_kw: c})
                    # logits predicting tail[0] come from the prefix; tail[t] from position t-1 of the tail
                    logits = torch.cat([first_logits.expand(len(bi), -1).unsqueeze(1), o.logits[:, :-1].float()], dim=1)
                else:
                    o = model(input_ids=x, attention_mask=torch.ones_like(x), logits_to_keep=k + 1)
                    logits = o.logits[:, -(k + 1) : -1].float()
                lp = torch.log_softmax(logits, dim=-1).gather(-1, x[:, lcp:].unsqueeze(-1)).squeeze(-1).sum(-1)
                for j, i in enumerate(bi):
                    out[i] = float(lp[j])
    if was_training:
        model.train()
    return out


def _skewnorm_sf(samples: list[float], x: float) -> float:
    from scipy import stats

    a, loc, scale = stats.skewnorm.fit(samples)
    return float(stats.skewnorm.sf(x, a, loc, scale))


def canary_exposures(model: Any, tokenizer: Any, canaries: list[Record], policy: CanaryPolicy, seed: int = 0) -> list[dict[str, Any]]:
    """One row per canary: exposure (bits), how it was obtained, the rank (exact or estimated), repeats."""
    rows = []
    for rec in canaries:
        c = rec.meta[CANARY_KEY]
        size = int(c["space_size"])
        log2r = math.log2(size)
        alphabet, length = c["alphabet"], int(c["length"])
        secret = c["secret"]
        if size <= policy.enumerate_max:
            cands = ["".join(t) for t in itertools.product(alphabet, repeat=length)]
            lps = secret_logprobs(model, tokenizer, c["context"], cands, policy.batch_size)
            tau = lps[cands.index(secret)]
            rank = 1 + sum(1 for v, s in zip(lps, cands, strict=True) if v > tau and s != secret)
            expo = log2r - math.log2(rank)
            rows.append({"canary_id": rec.id, "repeats": c.get("repeats"), "exposure": round(expo, 3), "method": "enumerated",
                         "rank": rank, "space_size": size, "logp": round(tau, 4)})
            continue
        rng = random.Random(f"{seed}:{rec.id}")
        cands = []
        while len(cands) < policy.candidates:
            s = "".join(rng.choice(alphabet) for _ in range(length))
            if s != secret:
                cands.append(s)
        lps = secret_logprobs(model, tokenizer, c["context"], [secret, *cands], policy.batch_size)
        tau, cl = lps[0], lps[1:]
        k = sum(1 for v in cl if v > tau)
        m = len(cl)
        rank_s = 1 + (size - 1) * (k / m if k else 1 / (m + 1))
        expo_s = log2r - math.log2(rank_s)
        sf = _skewnorm_sf(cl, tau)
        expo_x = min(log2r, -math.log2(sf)) if sf > 0 else log2r
        expo_x = max(expo_x, 0.0)
        rows.append({"canary_id": rec.id, "repeats": c.get("repeats"), "exposure": round(expo_x, 3), "exposure_sampled": round(expo_s, 3),
                     "method": "skewnorm", "candidates": m, "more_likely": k, "space_size": size, "logp": round(tau, 4)})
    return rows


@AUDITS.register("canary_exposure")
class CanaryExposureAudit(Audit):
    explicit_only = True
    name = "canary_exposure"
    Policy = CanaryPolicy

    def run(self, synthetic: list[Record], private: list[Record], holdout: list[Record] | None = None, **context: Any) -> AuditResult:
        p: CanaryPolicy = self.policy  # type: ignore[assignment]
        res = AuditResult(self.name, "pass")
        canaries = [r for r in [*private, *(context.get("canaries") or [])] if CANARY_KEY in (r.meta or {})]
        seen: set[str] = set()
        canaries = [r for r in canaries if not (r.id in seen or seen.add(r.id))]
        if not canaries:
            return res.skip("no canary records in the private set (insert them with the adapt step's `canaries:`)")
        model, tok = _model_and_tokenizer(context)
        if model is None:
            return res.skip("no local model given to the audit (set `model:`/`adapter:` on the audit step); "
                                        "exposure needs the adapted model's token log-probabilities")
        seed = int(context.get("seed", 0))
        if len(canaries) > p.max_canaries:
            canaries = random.Random(seed).sample(canaries, p.max_canaries)
        rows = canary_exposures(model, tok, canaries, p, seed=seed)
        thr = p.max_exposure if p.max_exposure is not None else math.log2(len(rows) / p.alpha)
        hot = [r for r in rows if r["exposure"] >= thr]
        for r in hot:
            res.findings.append(Finding(r["canary_id"], "canary_exposure", {"exposure": r["exposure"], "repeats": r["repeats"]}))
        methods = sorted({r["method"] for r in rows})
        how = ("exposure = log2|R| − log2 rank of the canary's secret among R by exact log p(secret | training context) "
               "under the audited model; " + ("every secret of R scored (exact rank)" if methods == ["enumerated"] else
                                              f"rank from {p.candidates} uniform candidates per canary, extrapolated with a skew-normal fit (Carlini et al. §4.3)"))
        res.figure("canaries", len(rows), "canary records found in the private training set")
        res.figure("space_bits", round(math.log2(rows[0]["space_size"]), 3), "log2|R| of the secrets' randomness space (maximum exposure)")
        res.figure("max_exposure", max(r["exposure"] for r in rows), how)
        res.figure("mean_exposure", round(sum(r["exposure"] for r in rows) / len(rows), 3), how)
        res.figure("threshold", round(thr, 3), "max_exposure of the policy" if p.max_exposure is not None else
                   f"log2(n_canaries/alpha) with alpha={p.alpha}: an unexposed canary set crosses it with probability ≤ alpha")
        res.figure("exposed_canaries", len(hot), "canaries with exposure ≥ threshold")
        by_rep: dict[int, list[float]] = {}
        for r in rows:
            by_rep.setdefault(int(r["repeats"] or 0), []).append(r["exposure"])
        for rep, vals in sorted(by_rep.items()):
            res.figure(f"mean_exposure_repeats_{rep}", round(sum(vals) / len(vals), 3), f"mean exposure of the canaries inserted {rep}× ({len(vals)} canaries)")
        res.sections["exposure"] = {
            "plot": {"kind": "bars", "title": "Canary exposure (bits)",
                     "groups": {"exposure": {f"{r['canary_id']} ×{r['repeats']}": r["exposure"] for r in rows},
                                "max (log2|R|)": {f"{r['canary_id']} ×{r['repeats']}": round(math.log2(r["space_size"]), 3) for r in rows}}},
            "caption": f"Exposure of each inserted canary (×repeats in training); the release fails at {thr:.1f} bits. {how}."}
        if len(by_rep) > 1:
            reps = sorted(by_rep)
            res.sections["exposure_vs_repeats"] = {
                "plot": {"kind": "lines", "title": "Exposure vs repeats", "xlabel": "times inserted in training", "ylabel": "mean exposure (bits)",
                         "series": {"mean exposure": {"x": reps, "y": [round(sum(by_rep[k]) / len(by_rep[k]), 3) for k in reps]}}},
                "caption": "Memorisation grows with how often a secret is seen; DP adaptation should keep it flat."}
        res.sections["canary_rows"] = [{k: v for k, v in r.items() if k != "logp"} for r in rows]
        if hot:
            res.verdict = "fail"
            res.release_reasons.append(f"{len(hot)} of {len(rows)} canaries have exposure ≥ {thr:.1f} bits: the generator memorised secrets from its training data")
        return res
