"""Helpers shared by test modules (import as ``from tests.helpers import ...``)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

__all__ = ["REAL_HOME", "isolated_home", "CORPUS", "build_tiny_lm"]

#: the MEDSYNTH_HOME the test run started with: where install.sh prepared the models and trained the PHI tagger
REAL_HOME = Path(os.environ.get("MEDSYNTH_HOME") or __import__("platformdirs").user_cache_dir("medsynth")).expanduser()


def isolated_home(path: Path) -> Path:
    """A fresh MEDSYNTH_HOME (own keys, caches, budget ledger) that sees the installed models and PHI tagger of the
    real home through a symlink (they are read, never written, by tests)."""
    path.mkdir(parents=True, exist_ok=True)
    if (REAL_HOME / "models").is_dir() and not (path / "models").exists():
        (path / "models").symlink_to(REAL_HOME / "models", target_is_directory=True)
    rt = REAL_HOME / "cache" / "runtime.json"  # this machine's measured dtype/threads (`models prepare` measures them): a copy
    if rt.is_file() and not (path / "cache" / "runtime.json").exists():
        (path / "cache").mkdir(parents=True, exist_ok=True)
        shutil.copyfile(rt, path / "cache" / "runtime.json")
    for vocab in (REAL_HOME / "cache").glob("scrub-*.json") if (REAL_HOME / "cache").is_dir() else []:  # the scrubber's word sets
        if not (path / "cache" / vocab.name).exists():
            (path / "cache").mkdir(parents=True, exist_ok=True)
            shutil.copyfile(vocab, path / "cache" / vocab.name)
    return path


#: a few radiology reports: the tiny LM's tokenizer is trained on them, and tests fine-tune on them
CORPUS = [
    "FINDINGS: The heart is normal in size. The lungs are clear. IMPRESSION: No acute disease.",
    "FINDINGS: Mild cardiomegaly. Small left pleural effusion. IMPRESSION: Cardiomegaly with effusion.",
    "FINDINGS: Calcified granuloma in the right upper lobe. No pneumothorax. IMPRESSION: Old granulomatous disease.",
    "Findings list: normal chest\nFINDINGS: No focal consolidation. IMPRESSION: Normal chest.",
]


def build_tiny_lm(seed: int = 0):  # noqa: ANN201
    """A random 2-layer Llama (hidden 32) with a 400-token BPE tokenizer trained on CORPUS, built in code."""
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
