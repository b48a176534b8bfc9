"""NER taggers trained on synthetic spans (token classification), evaluated with seqeval's entity-level F1.

Records' character spans become word-level BIO tags (words: ``\\w+`` runs and single punctuation marks); the
backbone (MiniLM by default, or any HF encoder folder) tags the first sub-word of each word. Evaluation follows the
seqeval/CoNLL conventions on word sequences: an entity counts only if its type and both boundaries match.
DP-SGD treats one record (sentence or note) as the privacy unit.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from ..data.records import Record, Span, id_ref
from ..exceptions import DataFormatError

__all__ = ["TaggerConfig", "Tagger", "fit_tagger", "words_and_tags", "tags_to_spans"]

_WORD = re.compile(r"\w+|[^\w\s]", re.UNICODE)


class TaggerConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    backbone: str | None = Field(None, description="HF encoder folder (default: the packaged MiniLM)")
    max_length: int = Field(128, ge=8, description="sub-word tokens per record (longer records are truncated)")
    train_layers: int = Field(2, ge=0, description="top transformer layers trained (embeddings and lower layers frozen)")
    epochs: int = Field(5, ge=1)
    batch_size: int = Field(16, ge=1)
    lr: float = Field(5e-4, gt=0)
    optimizer: str = "adam"


def words_and_tags(record: Record) -> tuple[list[tuple[int, int]], list[str]]:
    """Word offsets and BIO tags of a record (spans must be valid; overlapping spans: the first one wins)."""
    text = record.text or ""
    words = [(m.start(), m.end()) for m in _WORD.finditer(text)]
    tags = ["O"] * len(words)
    for sp in sorted(record.spans, key=lambda s: (s.start, -s.end)):
        if text[sp.start:sp.end] != sp.text and sp.text:
            raise DataFormatError(f"record {id_ref(record.id)}: a span's offsets do not reproduce its text; repair or filter the record.")
        inside = [i for i, (a, b) in enumerate(words) if a < sp.end and b > sp.start]
        if not inside or any(tags[i] != "O" for i in inside):
            continue
        tags[inside[0]] = f"B-{sp.label}"
        for i in inside[1:]:
            tags[i] = f"I-{sp.label}"
    return words, tags


def tags_to_spans(text: str, words: list[tuple[int, int]], tags: list[str]) -> list[Span]:
    from seqeval.metrics.sequence_labeling import get_entities

    out = []
    for label, s, e in get_entities(tags):
        a, b = words[s][0], words[e][1]
        out.append(Span(start=a, end=b, label=label, text=text[a:b]))
    return out


class Tagger:
    def __init__(self, net: Any, tokenizer: Any, tags: list[str], config: TaggerConfig, backbone: str, privacy: dict[str, Any] | None = None,
                 info: dict[str, Any] | None = None):
        self.net, self.tokenizer, self.tags, self.config, self.backbone = net, tokenizer, tags, config, backbone
        self.privacy, self.info = privacy, info or {}

    def _encode(self, records: list[Record], with_labels: bool) -> tuple[Any, Any, Any, list[list[int | None]], list[list[tuple[int, int]]], list[list[str]]]:
        import torch

        tag_ix = {t: i for i, t in enumerate(self.tags)}
        all_words, all_tags, ids, masks, labels, wids = [], [], [], [], [], []
        for r in records:
            words, tags = words_and_tags(r)
            text = r.text or ""
            enc = self.tokenizer([text[a:b] for a, b in words], is_split_into_words=True, truncation=True,
                                 max_length=self.config.max_length, padding="max_length")
            wi = enc.word_ids()
            lab, prev = [], None
            for w in wi:
                lab.append(-100 if w is None or w == prev else tag_ix.get(tags[w], tag_ix["O"]))
                prev = w
            ids.append(enc["input_ids"])
            masks.append(enc["attention_mask"])
            labels.append(lab)
            wids.append(wi)
            all_words.append(words)
            all_tags.append(tags)
        return (torch.tensor(ids, dtype=torch.long), torch.tensor(masks, dtype=torch.long), torch.tensor(labels, dtype=torch.long), wids,
                all_words, all_tags)

    def predict_tags(self, records: list[Record]) -> tuple[list[list[str]], list[list[str]]]:
        """(gold word tags, predicted word tags) per record; words beyond max_length are predicted O."""
        import torch

        ids, mask, _, wids, words, gold = self._encode(records, False)
        self.net.eval()
        preds = []
        with torch.no_grad():
            for s in range(0, len(records), 64):
                preds.append(self.net(ids[s:s + 64], mask[s:s + 64]).argmax(-1))
        P = torch.cat(preds) if preds else torch.zeros((0, 0), dtype=torch.long)
        out = []
        for i, wi in enumerate(wids):
            tags = ["O"] * len(words[i])
            prev = None
            for t, w in enumerate(wi):
                if w is not None and w != prev:
                    tags[w] = self.tags[int(P[i, t])]
                prev = w
            out.append(_repair_bio(tags))
        return gold, out

    def predict_spans(self, records: list[Record]) -> list[list[Span]]:
        _, pred = self.predict_tags(records)
        return [tags_to_spans(r.text or "", words_and_tags(r)[0], p) for r, p in zip(records, pred, strict=True)]

    def evaluate(self, records: list[Record]) -> dict[str, Any]:
        from seqeval.metrics import classification_report, f1_score, precision_score, recall_score
        from seqeval.scheme import IOB2

        gold, pred = self.predict_tags(records)
        rep = classification_report(gold, pred, output_dict=True, zero_division=0)
        return {"entity_f1": float(f1_score(gold, pred, zero_division=0)),
                "entity_precision": float(precision_score(gold, pred, zero_division=0)),
                "entity_recall": float(recall_score(gold, pred, zero_division=0)),
                "entity_f1_strict_iob2": float(f1_score(gold, pred, mode="strict", scheme=IOB2, zero_division=0)),
                "per_type_f1": {k: float(v["f1-score"]) for k, v in rep.items() if not k.endswith("avg")}, "n": len(records)}

    def per_sample_loss(self, records: list[Record]) -> Any:
        import torch

        from .loop import per_sample_loss

        ids, mask, lab, *_ = self._encode(records, True)
        self.net.eval()
        with torch.no_grad():
            return per_sample_loss(self.net(ids, mask), lab, "token").numpy()

    def save(self, path: str | Path) -> Path:
        import torch

        p = Path(path)
        p.mkdir(parents=True, exist_ok=True)
        torch.save(self.net.state_dict(), p / "model.pt")
        (p / "meta.json").write_text(json.dumps({"format": "medsynth-tagger/1", "tags": self.tags, "backbone": self.backbone,
                                                 "config": self.config.model_dump(mode="json"), "privacy": self.privacy,
                                                 "info": self.info}, indent=2, default=str), encoding="utf-8")
        return p

    @classmethod
    def load(cls, path: str | Path) -> Tagger:
        import torch
        from transformers import AutoTokenizer

        p = Path(path)
        meta = json.loads((p / "meta.json").read_text(encoding="utf-8"))
        cfg = TaggerConfig.model_validate(meta["config"])
        net = _network(meta["backbone"], len(meta["tags"]), cfg)
        net.load_state_dict(torch.load(p / "model.pt", map_location="cpu", weights_only=True))
        return cls(net, AutoTokenizer.from_pretrained(meta["backbone"]), meta["tags"], cfg, meta["backbone"], meta.get("privacy"), meta.get("info"))


def _repair_bio(tags: list[str]) -> list[str]:
    """An I- tag that does not continue an entity of its type starts one (the usual decoding convention)."""
    out = []
    for i, t in enumerate(tags):
        if t.startswith("I-") and (i == 0 or out[-1][2:] != t[2:] or out[-1] == "O"):
            t = "B-" + t[2:]
        out.append(t)
    return out


def _network(backbone: str, n_tags: int, cfg: TaggerConfig) -> Any:
    from torch import nn
    from transformers import AutoModel

    from .classifiers import freeze_lower_layers

    class TokenTagger(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.backbone = freeze_lower_layers(AutoModel.from_pretrained(backbone), cfg.train_layers)
            self.head = nn.Linear(self.backbone.config.hidden_size, n_tags)

        def forward(self, ids: Any, mask: Any) -> Any:
            return self.head(self.backbone(input_ids=ids, attention_mask=mask).last_hidden_state)

    net = TokenTagger()
    net.train()
    return net


def fit_tagger(records: list[Record], config: TaggerConfig | None = None, *, dp: Any = None, evals: dict[str, list[Record]] | None = None,
               seed: int = 0, ledger: Any = None, budget: str | None = None, run_id: str = "", step: str = "train", progress: Any = None) -> Tagger:
    import torch
    from transformers import AutoTokenizer

    from ..dp import check_dp_inputs, plan_dp
    from .features import minilm_path
    from .loop import TrainSettings, fit_module

    cfg = config or TaggerConfig()
    if not records:
        raise DataFormatError("the training set is empty.")
    types = sorted({s.label for r in records for s in r.spans})
    if not types:
        raise DataFormatError("no training record has spans; an NER tagger needs labelled spans (e.g. a generate step with task ner).")
    for name, recs in (evals or {}).items():
        unseen = sorted({s.label for r in recs for s in r.spans} - set(types))
        if unseen:
            raise DataFormatError(f"evaluation set '{name}' has {len(unseen)} entity type(s) absent from training: {', '.join(unseen[:10])}. "
                                  "Add training spans of these types or remove them from the evaluation set.")
    tags = ["O"] + [f"{p}-{t}" for t in types for p in ("B", "I")]
    backbone = cfg.backbone or minilm_path()
    tok = AutoTokenizer.from_pretrained(backbone)
    if not getattr(tok, "is_fast", False):
        raise DataFormatError(f"the tagger needs a fast tokenizer (word alignment); {backbone} has a slow one.")
    plan = None
    if dp is not None:
        check_dp_inputs(dp, len(records))
        plan = plan_dp(dp, len(records), cfg.batch_size, cfg.epochs)
    torch.manual_seed(seed)
    net = _network(backbone, len(tags), cfg)
    tg = Tagger(net, tok, tags, cfg, backbone)
    ids, mask, lab, *_ = tg._encode(records, True)
    settings = TrainSettings(cfg.epochs, cfg.batch_size, cfg.lr, "adam", 0.0, seed)  # type: ignore[arg-type]

    def train() -> Any:
        return fit_module(net, (ids, mask), lab, "token", settings, dp_plan=plan, dp=dp, progress=progress)

    if dp is not None and ledger is not None:
        with ledger.spend(budget, dp.epsilon, dp.delta, run_id=run_id, step=step, purpose=f"DP-SGD NER tagger ({len(records)} records)",
                          accountant=dp.accountant) as debit_id:
            res = train()
        res.privacy = dict(res.privacy or {}, budget=budget, debit_id=debit_id)
    else:
        res = train()
    tg.net = res.model
    tg.privacy = res.privacy
    tg.info = {"n_train": len(records), "history": res.history, "entity_types": types, "seed": seed}
    return tg
