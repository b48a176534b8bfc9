import json

import numpy as np
import pytest

from medsynth.data.records import Record, Span


@pytest.fixture(scope="session")
def tiny_backbone(tmp_path_factory):
    """A tiny random BERT encoder + fast WordPiece tokenizer built in code (no download)."""
    import torch
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
    from transformers import BertConfig, BertModel, PreTrainedTokenizerFast

    d = tmp_path_factory.mktemp("tiny_bert")
    words = ("small left right pleural effusion no pneumothorax mild cardiomegaly in the lung is seen normal heart size "
             "clear lungs acute disease large opacity base").split()
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", ".", ","] + sorted(set(words))
    tk = Tokenizer(models.WordPiece({w: i for i, w in enumerate(vocab)}, unk_token="[UNK]"))
    tk.normalizer = normalizers.BertNormalizer(lowercase=True)
    tk.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tk.post_processor = processors.TemplateProcessing(single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B [SEP]",
                                                      special_tokens=[("[CLS]", 2), ("[SEP]", 3)])
    PreTrainedTokenizerFast(tokenizer_object=tk, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]", sep_token="[SEP]",
                            mask_token="[MASK]").save_pretrained(d)
    torch.manual_seed(0)
    BertModel(BertConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
                         max_position_embeddings=64)).save_pretrained(d)
    return str(d)


def row_records(n, seed=0, prefix="r", noise=0.0):
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        a, b = rng.normal(size=2)
        lab = "pos" if a + b > 0 else "neg"
        c = str(rng.choice(["x", "y"]))
        if rng.random() < noise:  # drawn always, so that the same seed gives the same rows with or without noise
            lab = "neg" if lab == "pos" else "pos"
        out.append(Record(id=f"{prefix}{i}", kind="row", values={"a": float(a), "b": float(b), "c": c}, labels=[lab]))
    return out


_SENTS = [("Small left pleural effusion is seen.", [("pleural effusion", "FINDING"), ("left", "SIDE")], ["effusion"]),
          ("No pneumothorax.", [("pneumothorax", "FINDING")], ["normal"]),
          ("Mild cardiomegaly in the right lung.", [("cardiomegaly", "FINDING"), ("right", "SIDE")], ["cardiomegaly"]),
          ("Normal heart size, clear lungs.", [], ["normal"]),
          ("Large opacity in the left lung base.", [("opacity", "FINDING"), ("left", "SIDE")], ["opacity"])]


def text_records(n, prefix="t"):
    out = []
    for i in range(n):
        text, ents, labels = _SENTS[i % len(_SENTS)]
        spans = []
        for e, lab in ents:
            s = text.lower().index(e)
            spans.append(Span(start=s, end=s + len(e), label=lab, text=text[s:s + len(e)]))
        out.append(Record(id=f"{prefix}{i}", text=text, labels=labels, spans=spans))
    return out


def write_jsonl(path, records):
    path.write_text("".join(json.dumps(r.model_dump(mode="json")) + "\n" for r in records))
    return path
