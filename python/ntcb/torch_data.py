"""PyTorch data loading from .ntcb files (imports torch; ``import ntcb`` does not).

    from ntcb.torch_data import NtcbDataset, ChunkShuffleSampler
    ds = NtcbDataset("data/")      # a dataset: its directory, index.json, or URL
    # or: NtcbDataset(ntcb.open("http://host/data")), a list of .ntcb files,
    # or NtcbDataset.from_manifest("enc/manifest.jsonl")
    loader = torch.utils.data.DataLoader(ds, batch_size=32, num_workers=4,
                                         sampler=ChunkShuffleSampler(ds, seed=0))
    for batch in loader:
        tokens = batch["tokens"]          # float32 [B, T, D]
        ...

A sample is a dict: "tokens" (float32 tensor [T, D]), "key" (its key in the
file), "index" (its index in the dataset) and, with a manifest, "image" (the
image path). Readers are opened lazily in each worker process.

Decoding works a chunk at a time and each reader keeps its last decoded
chunk, so reading the samples of a chunk together is much cheaper than
jumping between chunks: ChunkShuffleSampler shuffles the order of the chunks
and the samples within each chunk, rather than all samples at once. For a
dataset of shards its units are the shards (a shard is opened, and over
HTTP its footer and index fetched, once per visit).
"""

from __future__ import annotations

import bisect
import json
import os
import random
from typing import Sequence

import numpy as np
import torch

from .dataset import Dataset
from .reader import Reader
from .reader import open as _open


class NtcbDataset(torch.utils.data.Dataset):
    """The samples of one or more .ntcb files, in file order, or of a
    dataset of shards (an ntcb.Dataset, or its location: a directory, its
    index.json, an http(s) or fsspec URL)."""

    def __init__(self, paths, images: Sequence[str] | None = None, dtype=np.float32, model=None):
        self.dtype = np.dtype(dtype)
        self.images = list(images) if images is not None else None
        self._readers: dict[int, Reader] = {}
        self.dataset = None
        if isinstance(paths, (str, os.PathLike)):
            opened = _open(paths, dtype=self.dtype, model=model)
            if isinstance(opened, Dataset):
                paths = opened
            else:
                opened.close()
        if isinstance(paths, Dataset):
            self.dataset, self.paths = paths, [paths.location]
            self._starts = [0, len(paths)]
            self._chunks = []
            if self.images is not None and len(self.images) != len(self):
                raise ValueError(f"{len(self.images)} image names for {len(self)} samples")
            return
        self.paths = [paths] if isinstance(paths, (str, os.PathLike)) else [os.fspath(p) for p in paths]
        self._starts = [0]
        self._chunks = []  # per file: the first sample of each chunk
        for p in self.paths:
            with Reader(p) as r:
                self._starts.append(self._starts[-1] + len(r))
                self._chunks.append([c.first for c in r._c.chunks])
        if self.images is not None and len(self.images) != len(self):
            raise ValueError(f"{len(self.images)} image names for {len(self)} samples")

    @classmethod
    def from_manifest(cls, manifest: str, **kw) -> "NtcbDataset":
        """A dataset over the .ntcb files named in a manifest written by
        scripts/encode_dataset.py (fields image, ntcb, key), in manifest
        order; the files must hold the keys in that order too."""
        base = os.path.dirname(os.path.abspath(manifest))
        files, images = [], []
        with open(manifest, encoding="utf-8") as f:
            for line in f:
                e = json.loads(line)
                p = os.path.join(base, e["ntcb"])
                if not files or files[-1] != p:
                    files.append(p)
                images.append(e["image"])
        ds = cls(files, images=images, **kw)
        with open(manifest, encoding="utf-8") as f:
            for i, line in enumerate(f):
                fi, j = ds._locate(i)
                if ds._reader(fi).key(j) != json.loads(line)["key"]:
                    raise ValueError(f"{manifest}: line {i + 1}: key {json.loads(line)['key']!r} is not sample {j} of {ds.paths[fi]}")
        ds._readers.clear()
        return ds

    def __len__(self) -> int:
        return self._starts[-1]

    def _locate(self, i: int) -> tuple[int, int]:
        if not 0 <= i < len(self):
            raise IndexError(f"sample {i} out of range [0, {len(self)})")
        fi = bisect.bisect_right(self._starts, i) - 1
        return fi, i - self._starts[fi]

    def _reader(self, fi: int) -> Reader:
        r = self._readers.get(fi)
        if r is None:
            r = self._readers[fi] = Reader(self.paths[fi], dtype=self.dtype)
        return r

    def __getitem__(self, i: int) -> dict:
        if self.dataset is not None:
            i = int(i)
            item = {"tokens": torch.from_numpy(self.dataset.read_sample(i)), "key": self.dataset.key(i), "index": i}
            if self.images is not None:
                item["image"] = self.images[i]
            return item
        fi, j = self._locate(int(i))
        r = self._reader(fi)
        item = {"tokens": torch.from_numpy(r.read_sample(j)), "key": r.key(j), "index": int(i)}
        if self.images is not None:
            item["image"] = self.images[i]
        return item

    def chunks(self) -> list[range]:
        """The dataset indices of every chunk, in file order (of every shard,
        for a dataset of shards)."""
        if self.dataset is not None:
            return [self.dataset.shard_range(s) for s in range(self.dataset.num_shards)]
        out = []
        for fi, firsts in enumerate(self._chunks):
            s0, s1 = self._starts[fi], self._starts[fi + 1]
            bounds = [s0 + f for f in firsts] + [s1]
            out += [range(a, b) for a, b in zip(bounds, bounds[1:])]
        return out

    def __getstate__(self):  # readers are reopened in each worker
        d = dict(self.__dict__)
        d["_readers"] = {}
        return d


class ChunkShuffleSampler(torch.utils.data.Sampler):
    """Shuffles the chunks, then the samples within each chunk: every epoch
    sees every sample once, and a reader decodes each chunk about once.
    Call set_epoch(e) for a new order each epoch (as DistributedSampler)."""

    def __init__(self, ds: NtcbDataset, seed: int = 0):
        self.chunks = ds.chunks()
        self.seed, self.epoch = seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return sum(len(c) for c in self.chunks)

    def __iter__(self):
        rng = random.Random(self.seed * 1000003 + self.epoch)
        order = list(range(len(self.chunks)))
        rng.shuffle(order)
        for c in order:
            idx = list(self.chunks[c])
            rng.shuffle(idx)
            yield from idx
