"""Synthetic data quality: diversity, correctness (oracle), naturalness; score and filter steps."""

from .diversity import distinct_n, self_bleu

__all__ = ["distinct_n", "self_bleu"]
