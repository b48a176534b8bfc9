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

from tests.helpers import build_tiny_lm  # noqa: E402  (shared with other test folders)


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
