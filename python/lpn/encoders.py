"""A small built-in text encoder: hashed character n-grams (nothing downloads).

``HashedNgramEncoder(dim)`` maps text to a unit vector: every character n-gram of the
lower-cased, space-padded text (and every word) is hashed (BLAKE2b, stable across runs and
processes, unlike Python's ``hash``) to a bucket and a sign. Similar strings share n-grams and
so point in similar directions. It is meant for tests and examples; any embedding model's
vectors work with ``RecallMemory`` as well.
"""

from __future__ import annotations

import hashlib
import re
from typing import Iterable, Sequence, Union

import numpy as np

__all__ = ["HashedNgramEncoder"]


class HashedNgramEncoder:
    def __init__(self, dim: int = 256, ngrams: Sequence[int] = (3, 4), words: bool = True):
        if isinstance(dim, bool) or not isinstance(dim, int) or dim <= 0:
            raise ValueError(f"dim must be a positive int, got {dim!r}")
        ngrams = tuple(ngrams)
        if not ngrams or any(not isinstance(n, int) or n <= 0 for n in ngrams):
            raise ValueError(f"ngrams must be positive ints, got {ngrams!r}")
        self.dim, self.ngrams, self.words = dim, ngrams, bool(words)

    def _features(self, text: str) -> Iterable[str]:
        t = " " + re.sub(r"\s+", " ", text.lower()).strip() + " "
        for n in self.ngrams:
            for i in range(max(0, len(t) - n + 1)):
                yield t[i:i + n]
        if self.words:
            for w in re.findall(r"\w+", t):
                yield "w:" + w

    def encode_one(self, text: str) -> np.ndarray:
        if not isinstance(text, str):
            raise TypeError(f"text must be str, got {type(text).__name__}")
        v = np.zeros(self.dim, dtype=np.float64)
        for f in self._features(text):
            h = int.from_bytes(hashlib.blake2b(f.encode(), digest_size=8).digest(), "little")
            v[h % self.dim] += 1.0 if (h >> 63) & 1 else -1.0
        n = np.linalg.norm(v)
        return (v / n if n > 0 else v).astype(np.float32)

    def encode(self, texts: Union[str, Sequence[str]]) -> np.ndarray:
        """``(dim,)`` for one string, ``(n, dim)`` for a sequence of strings."""
        if isinstance(texts, str):
            return self.encode_one(texts)
        return np.stack([self.encode_one(t) for t in texts]) if len(texts) else np.zeros(
            (0, self.dim), dtype=np.float32)

    __call__ = encode
