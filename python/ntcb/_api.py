"""The one reading API of ntcb.Reader (a file) and ntcb.Dataset (a dataset
of shards): what both derive from a few primitives, so that the two never
drift apart. A class provides ``__len__``, ``keys()``, ``index(key)``,
``read_sample(i)``, ``read(indices)``, ``close()``, ``layout`` and
``codec``; this adds indexing, slicing, lookups by key, iteration, ``shape``
and the context manager."""

from __future__ import annotations

import numbers
from typing import Iterator

import numpy as np


class SampleAPI:
    @property
    def shape(self) -> tuple[int, int, int]:
        """(samples, tokens, dim)."""
        return (len(self), self.layout.tokens, self.layout.dim)

    def _index(self, i) -> int:
        n = len(self)
        if not isinstance(i, numbers.Integral) or isinstance(i, bool):
            raise TypeError(f"sample index must be an integer, not {type(i).__name__}")
        i = int(i)
        if i < 0:
            i += n
        if not 0 <= i < n:
            raise IndexError(f"sample index out of range [0, {n})")
        return i

    def __getitem__(self, i):
        if isinstance(i, slice):
            return self.read(range(*i.indices(len(self))))
        if isinstance(i, str):
            return self.get(i)
        return self.read_sample(i)

    def get(self, key: str) -> np.ndarray:
        """The sample with the key, [tokens, dim]."""
        return self.read_sample(self.index(key))

    def __iter__(self) -> Iterator[np.ndarray]:
        for i in range(len(self)):
            yield self.read_sample(i)

    def items(self) -> Iterator[tuple[str, np.ndarray]]:
        """(key, sample) pairs in storage order."""
        for i, k in enumerate(self.keys()):
            yield k, self.read_sample(i)

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()
