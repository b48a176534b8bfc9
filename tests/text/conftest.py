"""Tiny random causal LMs and tokenizers built in code (no download) for fast generation tests."""

import pytest

CORPUS = [
    "FINDINGS: The heart is normal in size. The lungs are clear. IMPRESSION: No acute disease.",
    "FINDINGS: Mild cardiomegaly. Small left pleural effusion. IMPRESSION: Cardiomegaly with effusion.",
    "FINDINGS: Calcified granuloma in the right upper lobe. No pneumothorax. IMPRESSION: Old granulomatous disease.",
    "Findings list: normal chest\nFINDINGS: No focal consolidation. IMPRESSION: Normal chest.",
]


def build_tiny_lm(seed: int = 0):
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=400, special_tokens=["<pad>", "<s>", "</s>", "<unk>"], initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(CORPUS * 20, trainer)
    hf_tok = PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", bos_token="<s>", eos_token="</s>", unk_token="<unk>")
    torch.manual_seed(seed)
    cfg = LlamaConfig(vocab_size=len(hf_tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                      num_key_value_heads=2, max_position_embeddings=512, pad_token_id=hf_tok.pad_token_id,
                      bos_token_id=hf_tok.bos_token_id, eos_token_id=hf_tok.eos_token_id)
    model = LlamaForCausalLM(cfg).eval()
    return model, hf_tok


@pytest.fixture(scope="session")
def tiny_lm():
    return build_tiny_lm()


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory, tiny_lm):
    d = tmp_path_factory.mktemp("tiny_lm")
    model, tok = tiny_lm
    model.save_pretrained(d)
    tok.save_pretrained(d)
    return d


def train_tiny_reporter(model, tok, steps: int = 150, seed: int = 0):
    """Overfit the tiny LM on a few prompt-shaped reports so that it emits complete reports (for step tests)."""
    import torch

    from medsynth.text.steps import build_prompt

    torch.manual_seed(seed)
    docs = []
    for labels, body in [(["normal"], " The heart is normal in size. The lungs are clear. IMPRESSION: No acute disease."),
                         (["Cardiomegaly"], " Mild cardiomegaly. No pleural effusion. IMPRESSION: Cardiomegaly."),
                         (["Pleural Effusion"], " Small left pleural effusion. IMPRESSION: Left effusion.")]:
        docs.append(build_prompt([], labels) + body + "\n\n")
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    enc = tok(docs, return_tensors="pt", padding=True)
    labels = enc["input_ids"].clone()
    labels[enc["attention_mask"] == 0] = -100
    for _ in range(steps):
        loss = model(**enc, labels=labels).loss
        loss.backward()
        opt.step()
        opt.zero_grad()
    model.eval()
    return model


@pytest.fixture(scope="session")
def reporter_dir(tmp_path_factory):
    model, tok = build_tiny_lm(seed=1)
    tok.padding_side = "right"
    train_tiny_reporter(model, tok)
    d = tmp_path_factory.mktemp("tiny_reporter")
    model.save_pretrained(d)
    tok.save_pretrained(d)
    return d
