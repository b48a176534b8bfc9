"""Tiny random causal LMs and tokenizers built in code (no download) for fast generation tests."""

import pytest


@pytest.fixture(scope="session", autouse=True)
def _one_torch_thread():
    """Tiny models gain nothing from threads, and on a shared CPU OpenMP spinning makes them many times slower."""
    try:
        import torch
    except ImportError:  # pragma: no cover
        yield
        return
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)

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


HEADER = "Chest radiograph reports (PA and lateral views). Each report starts with the list of its findings."
SENT_HEADER = "Chest radiograph reports (PA and lateral views): single sentences, each after the list of what it mentions."
REPORTS = [(["normal"], "none", "The heart is normal in size. The lungs are clear.", "No acute disease."),
           (["Cardiomegaly"], "cardiomegaly", "Mild cardiomegaly. No pleural effusion.", "Cardiomegaly."),
           (["Pleural Effusion"], "pleural effusion", "Small left pleural effusion.", "Left effusion.")]


def reporter_documents() -> list[str]:
    """Prompt-shaped documents in the generate step's formats: whole reports after a label line (document mode),
    single sentences after a mention line, and reports after an entity line (entity-first sentence mode)."""
    from medsynth.text.labels import LABEL_WORDS

    docs = []
    for labels, mention, body, imp in REPORTS:
        words = ", ".join(LABEL_WORDS.get(lab, lab) for lab in labels)
        docs.append(f"{HEADER}\n\nFindings list: {words}\nFINDINGS: {body} IMPRESSION: {imp}\n\n")
        docs.append(f"{HEADER}\n\nFindings: {mention}\nFINDINGS: {body}\nIMPRESSION: {imp}\n\n")
        first = body.split(". ")[0].rstrip(".") + "."
        docs.append(f"{SENT_HEADER}\n\nMentions: {mention}\nSentence: {first}\n\n")
    docs.append(f"{SENT_HEADER}\n\nMentions: none\nSentence: The lungs are clear.\n\n")
    return docs


def train_tiny_reporter(model, tok, steps: int = 150, seed: int = 0):
    """Overfit the tiny LM on a few prompt-shaped documents so that it emits complete reports (for step tests)."""
    import torch

    torch.manual_seed(seed)
    docs = reporter_documents()
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
