"""Datasets: a directory of .ntcb shards with an index.json (docs/format.md,
"Datasets"), local or at a URL, read as one sequence of samples.

    import ntcb
    ds = ntcb.open("data/")                 # or data/index.json, http://host/data, s3://bucket/data
    len(ds), ds.keys()[:3], ds.num_shards
    x = ds[123]                             # float32 [tokens, dim]
    b = ds.read([5, 900, 17])               # [3, tokens, dim]
    y = ds.get("shard-00007#3")

``Dataset`` has the API of ``ntcb.Reader`` with global indices. Opening reads
index.json only (and the keys file, if any) and checks it as pkg/dataset
does; a shard is opened when one of its samples is first read, and checked
against its index entry (size, sample count, layout, dtype, keys). At most
``max_open`` shards stay open. Shards share one set of models: a model held
by reference is found among the dataset's models (or the files given with
``model=``) and checked by its SHA-256.
"""

from __future__ import annotations

import bisect
import hashlib
import json
import os
import threading
from collections import OrderedDict
from typing import Iterable, Sequence

import numpy as np

from . import _models, _remote
from ._api import SampleAPI
from . import codecs as _codecs
from .container import MAX_KEY_LEN, MAX_SAMPLES as MAX_SHARD_SAMPLES, Container, _File
from .errors import CorruptError, NotFound, NtcbError, TooLargeError, UnsupportedVersion

INDEX_NAME = "index.json"
FORMAT_NAME = "ntc-dataset"
VERSION = 1
MAX_INDEX_BYTES = 64 << 20
MAX_KEYS_BYTES = 4 << 30
MAX_SHARDS = 1 << 20
MAX_MODELS = 256
MAX_NAME_LEN = 255
MAX_SAMPLES = 1 << 40
MAX_FILE_BYTES = 1 << 44
MAX_OPEN_SHARDS = 64

_TOP = {"format", "version", "tool", "codec", "dtype", "layout", "samples", "models", "shards", "keys_file", "meta"}
_FILE = {"file", "bytes", "sha256"}
_NAME_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")


class MismatchError(CorruptError):
    """A shard or model file is not the one the dataset index describes."""


def check_name(name) -> None:
    """Accepts a relative path of plain segments, as pkg/dataset does."""
    if not isinstance(name, str) or not 0 < len(name.encode("utf-8", "surrogatepass")) <= MAX_NAME_LEN:
        raise CorruptError(f"file name {name!r}: want 1 to {MAX_NAME_LEN} bytes")
    for seg in name.split("/"):
        if not seg or seg[0] == "." or not set(seg) <= _NAME_CHARS:
            raise CorruptError(f"file name {name!r}: not a plain relative path")


def _check_hash(h, what: str) -> None:
    if not (isinstance(h, str) and len(h) == 64 and all(c in "0123456789abcdef" for c in h)):
        raise CorruptError(f"{what}: {h!r} is not 64 lowercase hex digits")


def _int(v, what: str) -> int:
    if not isinstance(v, int) or isinstance(v, bool):
        raise CorruptError(f"{what}: {v!r} is not an integer")
    return v


def _check_file(f, what: str, extra: set) -> None:
    if not isinstance(f, dict):
        raise CorruptError(f"{what}: not an object")
    unknown = set(f) - _FILE - extra
    if unknown:
        raise CorruptError(f"{what}: unknown fields {sorted(unknown)}")
    check_name(f.get("file"))
    n = _int(f.get("bytes"), f"{what} bytes")
    if not 0 <= n <= MAX_FILE_BYTES:
        raise TooLargeError(f"{what} ({f['file']}): {n} bytes")
    _check_hash(f.get("sha256"), f"{what} ({f['file']}) sha256")


def _add_keys(seen: dict, keys, shard: int, name: str) -> None:
    for j, k in enumerate(keys):
        if not isinstance(k, str) or not 0 < len(k.encode("utf-8", "surrogatepass")) <= MAX_KEY_LEN:
            raise CorruptError(f"shard {shard} ({name}) key {j}: want 1 to {MAX_KEY_LEN} bytes of UTF-8")
        if k in seen:
            raise CorruptError(f"key {k!r} is in shard {seen[k]} and in shard {shard} ({name})")
        seen[k] = shard


def parse_index(b: bytes) -> dict:
    """Decodes and checks an index.json from an untrusted source, as
    pkg/dataset ParseIndex does. With a keys file the shards have no keys
    until read_keys fills them."""
    if len(b) > MAX_INDEX_BYTES:
        raise TooLargeError(f"index of {len(b)} bytes > {MAX_INDEX_BYTES}")
    try:
        x = json.loads(b.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as e:
        raise CorruptError(f"index: {e}") from None
    if not isinstance(x, dict):
        raise CorruptError("index: not a JSON object")
    if x.get("format") != FORMAT_NAME:
        raise CorruptError(f"format {x.get('format')!r}, want {FORMAT_NAME!r}")
    v = x.get("version")
    if not isinstance(v, int) or isinstance(v, bool) or not 1 <= v <= VERSION:
        raise UnsupportedVersion(f"dataset format version {v!r} (this reader reads 1 to {VERSION})")
    unknown = set(x) - _TOP
    if unknown:
        raise CorruptError(f"index: unknown fields {sorted(unknown)}")
    layout = _codecs.Layout.from_json(x.get("layout"))
    layout.validate()
    if x.get("codec") not in _codecs.NAMES:
        raise CorruptError(f"unknown codec {x.get('codec')!r}")
    if not isinstance(x.get("dtype"), str) or not 0 < len(x["dtype"]) <= 32:
        raise CorruptError(f"dtype {x.get('dtype')!r}")
    meta = x.get("meta", {})
    if not isinstance(meta, dict) or len(meta) > 256:
        raise CorruptError("meta: not an object of at most 256 pairs")
    for k in ("models", "shards"):
        if not isinstance(x.get(k), list):
            raise CorruptError(f"{k}: not a list")
    if len(x["models"]) > MAX_MODELS:
        raise TooLargeError(f"{len(x['models'])} models > {MAX_MODELS}")
    if len(x["shards"]) > MAX_SHARDS:
        raise TooLargeError(f"{len(x['shards'])} shards > {MAX_SHARDS}")
    samples = _int(x.get("samples"), "samples")
    if not 0 <= samples <= MAX_SAMPLES:
        raise TooLargeError(f"{samples} samples")
    names = {INDEX_NAME: "the index"}

    def claim(name, what):
        if name in names:
            raise CorruptError(f"{names[name]} and {what} are both {name!r}")
        names[name] = what

    hashes = set()
    for i, m in enumerate(x["models"]):
        what = f"model {i}"
        _check_file(m, what, {"codec", "model_sha256"})
        claim(m["file"], what)
        if m.get("codec") not in _codecs.NAMES:
            raise CorruptError(f"{what}: unknown codec {m.get('codec')!r}")
        _check_hash(m.get("model_sha256"), f"{what} model_sha256")
        if m["model_sha256"] in hashes:
            raise CorruptError(f"{what}: a second file of model {m['model_sha256']}")
        hashes.add(m["model_sha256"])
    kf = x.get("keys_file")
    if kf is not None:
        _check_file(kf, "the keys file", set())
        claim(kf["file"], "the keys file")
        if kf["bytes"] > MAX_KEYS_BYTES:
            raise TooLargeError(f"keys file of {kf['bytes']} bytes > {MAX_KEYS_BYTES}")
    total = 0
    seen: dict = {}
    for i, s in enumerate(x["shards"]):
        what = f"shard {i}"
        _check_file(s, what, {"samples", "keys"})
        claim(s["file"], what)
        n = _int(s.get("samples"), f"{what} samples")
        if not 1 <= n <= MAX_SHARD_SAMPLES:
            raise CorruptError(f"{what} ({s['file']}): {n} samples")
        total += n
        if total > MAX_SAMPLES:
            raise TooLargeError(f"more than {MAX_SAMPLES} samples")
        keys = s.get("keys")
        if kf is not None and keys is not None:
            raise CorruptError(f"{what} ({s['file']}) lists keys although the index has a keys file")
        if kf is None:
            if not isinstance(keys, list) or len(keys) != n:
                raise CorruptError(f"{what} ({s['file']}): {len(keys) if isinstance(keys, list) else None} keys for {n} samples")
            _add_keys(seen, keys, i, s["file"])
    if total != samples:
        raise CorruptError(f"the shards hold {total} samples, the index declares {samples}")
    x.setdefault("meta", {})
    return x


def read_keys(x: dict, data: bytes) -> None:
    """Checks the keys file of index x (its bytes) and fills in the keys."""
    kf = x["keys_file"]
    if len(data) != kf["bytes"]:
        raise MismatchError(f"{kf['file']} is {len(data)} bytes, the index says {kf['bytes']}")
    if hashlib.sha256(data).hexdigest() != kf["sha256"]:
        raise MismatchError(f"{kf['file']}: sha256 {hashlib.sha256(data).hexdigest()}, the index says {kf['sha256']}")
    lines = data.split(b"\n")
    if lines[-1] != b"" or len(lines) - 1 != len(x["shards"]):
        raise CorruptError(f"{kf['file']}: {len(lines) - 1} lines for {len(x['shards'])} shards")
    seen: dict = {}
    for i, (line, s) in enumerate(zip(lines, x["shards"])):
        try:
            keys = json.loads(line.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as e:
            raise CorruptError(f"{kf['file']}: line {i + 1}: {e}") from None
        if not isinstance(keys, list) or len(keys) != s["samples"]:
            raise CorruptError(f"{kf['file']}: line {i + 1}: not {s['samples']} keys")
        _add_keys(seen, keys, i, s["file"])
        s["keys"] = keys


def read_index(loc: str) -> dict:
    """Reads and checks the index at loc (path or URL), with its keys file."""
    try:
        x = parse_index(_remote.read_file(loc, MAX_INDEX_BYTES))
        if x.get("keys_file") is not None:
            base = loc.rsplit("/", 1)[0] if _remote.is_url(loc) else os.path.dirname(loc)
            kloc = _remote.join(base, x["keys_file"]["file"])
            read_keys(x, _remote.read_file(kloc, x["keys_file"]["bytes"]))
    except NtcbError as e:
        raise e.with_path(e.path or loc) from None
    return x


def _sha256_of(src) -> str:
    h = hashlib.sha256()
    off = 0
    while off < src.size:
        n = min(1 << 20, src.size - off)
        h.update(src.read_at(n, off))
        off += n
    return h.hexdigest()


class Dataset(SampleAPI):
    """Random access to the samples of a dataset of .ntcb shards, with the
    API of ntcb.Reader (global indices, keys, get, read, read_torch, verify).
    Safe to share between threads; survives pickling (DataLoader workers
    reopen it by its location)."""

    def __init__(self, loc, *, dtype=np.float32, model=None, decoder: str | None = None, max_open: int = MAX_OPEN_SHARDS):
        loc = os.fspath(loc) if not isinstance(loc, str) else loc
        self.location = loc
        self.dtype = np.dtype(dtype)
        self.model_path = model
        self.decoder = decoder
        self.max_open = max(1, int(max_open))
        if _remote.is_url(loc):
            u = loc.rstrip("/")
            if u.lower().endswith(".json"):
                self.base, self.index_path = u.rsplit("/", 1)[0], u
            else:
                self.base, self.index_path = u, u + "/" + INDEX_NAME
        elif os.path.isdir(loc):
            self.base, self.index_path = loc, os.path.join(loc, INDEX_NAME)
        else:
            self.base, self.index_path = os.path.dirname(loc) or ".", loc
        self.path = self.index_path
        self.dataset_index = read_index(self.index_path)
        x = self.dataset_index
        self.layout = _codecs.Layout.from_json(x["layout"])
        self.meta = {k: v for k, v in x.items() if k not in ("shards", "models", "keys_file")}
        self._starts = [0]
        for s in x["shards"]:
            self._starts.append(self._starts[-1] + s["samples"])
        self._keys = [k for s in x["shards"] for k in s["keys"]]
        self._key_index = {k: i for i, k in enumerate(self._keys)}
        files = [] if model is None else ([model] if isinstance(model, (str, os.PathLike)) else list(model))
        self._models = _models.Models(files)
        self._lock = threading.Lock()
        self._open: OrderedDict[int, object] = OrderedDict()

    # -- pickling -------------------------------------------------------------

    def __getstate__(self):
        return {"loc": self.location, "dtype": self.dtype.str, "model": self.model_path, "decoder": self.decoder,
                "max_open": self.max_open}

    def __setstate__(self, state):
        self.__init__(state["loc"], dtype=np.dtype(state["dtype"]), model=state["model"], decoder=state["decoder"],
                      max_open=state["max_open"])

    # -- what it holds ----------------------------------------------------------

    @property
    def codec(self) -> str:
        return self.dataset_index["codec"]

    @property
    def num_shards(self) -> int:
        return len(self.dataset_index["shards"])

    @property
    def shards(self) -> list[dict]:
        """The index's shard entries (file, bytes, sha256, samples, keys)."""
        return self.dataset_index["shards"]

    def shard_range(self, s: int) -> range:
        """The dataset indices of shard s's samples."""
        return range(self._starts[s], self._starts[s + 1])

    def __len__(self) -> int:
        return self._starts[-1]

    def keys(self) -> list[str]:
        return list(self._keys)

    def key(self, i: int) -> str:
        return self._keys[self._index(i)]

    def index(self, key: str) -> int:
        """The index of the sample with the key; raises ntcb.NotFound (a KeyError)."""
        try:
            return self._key_index[key]
        except (KeyError, TypeError):
            raise NotFound(f"key {key!r}: not found", self.index_path) from None

    def __contains__(self, key) -> bool:
        return isinstance(key, str) and key in self._key_index

    def locate(self, i: int) -> tuple[int, int]:
        """(shard, index in the shard) of sample i."""
        i = self._index(i)
        s = bisect.bisect_right(self._starts, i) - 1
        return s, i - self._starts[s]

    # -- shards -------------------------------------------------------------------

    def _locate_model(self, cid: int, sha: bytes, hint: str):
        for m in self.dataset_index["models"]:
            if m["model_sha256"] == sha.hex():
                loc = _remote.join(self.base, m["file"])
                return _models.read_model_blob(loc, cid), loc
        return None, f"the models of {self.index_path}"

    def shard(self, s: int):
        """Shard s's ntcb.Reader (opened on first use, checked against the index)."""
        if not 0 <= s < self.num_shards:
            raise IndexError(f"shard {s} out of range [0, {self.num_shards})")
        with self._lock:
            r = self._open.get(s)
            if r is not None:
                self._open.move_to_end(s)
                return r
        r = self._open_shard(s)
        with self._lock:
            if s in self._open:  # another thread opened it meanwhile
                r.close()
                r = self._open[s]
            else:
                self._open[s] = r
            self._open.move_to_end(s)
            while len(self._open) > self.max_open:
                _, old = self._open.popitem(last=False)
                # Other threads may still read an evicted shard: closing its
                # file would fail them; it is closed when collected.
                del old
        return r

    def _open_shard(self, s: int):
        from .reader import Reader

        sh = self.dataset_index["shards"][s]
        loc = _remote.join(self.base, sh["file"])
        src = _remote.open_source(loc) if _remote.is_url(loc) else _File(loc)
        if src.size != sh["bytes"]:
            src.close()
            raise MismatchError(f"{src.size} bytes, the index says {sh['bytes']}", loc)
        r = Reader(loc, dtype=self.dtype, decoder=self.decoder, _container=Container(_src=src), _models=self._models,
                   _locators=[self._locate_model])
        try:
            self._check_shard(s, r)
        except NtcbError as e:
            r.close()
            raise e.with_path(loc) from None
        return r

    def _check_shard(self, s: int, r) -> None:
        sh = self.dataset_index["shards"][s]
        if len(r) != sh["samples"]:
            raise MismatchError(f"{len(r)} samples, the index says {sh['samples']}")
        if r.layout != self.layout:
            raise MismatchError(f"layout {r.layout}, the dataset's is {self.layout}")
        if r.meta.get("dtype") != self.dataset_index["dtype"]:
            raise MismatchError(f"dtype {r.meta.get('dtype')}, the dataset's is {self.dataset_index['dtype']}")
        got = r.keys()
        if got != sh["keys"]:
            j = next(j for j, (a, b) in enumerate(zip(got, sh["keys"])) if a != b)
            raise MismatchError(f"sample {j} has key {got[j]!r}, the index says {sh['keys'][j]!r}")

    # -- reading --------------------------------------------------------------------

    def read_sample(self, i: int) -> np.ndarray:
        s, j = self.locate(i)
        return self.shard(s).read_sample(j)

    def _groups(self, indices: Iterable):
        idx = [self.index(k) if isinstance(k, str) else self._index(k) for k in indices]
        by_shard: dict[int, list[tuple[int, int]]] = {}
        for j, i in enumerate(idx):
            s = bisect.bisect_right(self._starts, i) - 1
            by_shard.setdefault(s, []).append((j, i - self._starts[s]))
        return len(idx), by_shard

    def read(self, indices: Iterable) -> np.ndarray:
        """Samples by index or key, in the given order, [n, tokens, dim];
        each shard is asked once for the samples it holds."""
        n, by_shard = self._groups(indices)
        out = np.empty((n, self.layout.tokens, self.layout.dim), dtype=self.dtype)
        for s, items in by_shard.items():
            out[[j for j, _ in items]] = self.shard(s).read([p for _, p in items])
        return out

    def read_torch(self, indices: Sequence, device="cuda", dtype=None):
        """Samples by index or key as a torch tensor [n, tokens, dim] on device
        (see ntcb.Reader.read_torch)."""
        import torch

        n, by_shard = self._groups(indices)
        out = torch.empty((n, self.layout.tokens, self.layout.dim), dtype=dtype or torch.float32, device=device)
        for s, items in by_shard.items():
            vals = self.shard(s).read_torch([p for _, p in items], device=device, dtype=dtype)
            out[torch.tensor([j for j, _ in items], device=device)] = vals
        return out

    def verify(self) -> None:
        """Checks every file against the index (size and SHA-256), every model
        (its blob's hash), and every shard (every checksum, every chunk
        decoded); raises on the first problem, naming the file."""
        for m in self.dataset_index["models"]:
            loc = _remote.join(self.base, m["file"])
            self._verify_file(loc, m)
            blob = _models.read_model_blob(loc, _codecs.NAMES[m["codec"]])
            if blob is None or hashlib.sha256(bytes(blob)).hexdigest() != m["model_sha256"]:
                raise MismatchError(f"model sha256 is not {m['model_sha256']}", loc)
        for s, sh in enumerate(self.dataset_index["shards"]):
            loc = _remote.join(self.base, sh["file"])
            self._verify_file(loc, sh)
            self.shard(s).verify()

    def _verify_file(self, loc: str, f: dict) -> None:
        src = _remote.open_source(loc) if _remote.is_url(loc) else _LocalSource(loc)
        try:
            if src.size != f["bytes"]:
                raise MismatchError(f"{src.size} bytes, the index says {f['bytes']}", loc)
            got = _sha256_of(src)
            if got != f["sha256"]:
                raise MismatchError(f"sha256 {got}, the index says {f['sha256']}", loc)
        finally:
            src.close()

    # -- lifetime -----------------------------------------------------------------

    def close(self) -> None:
        with self._lock:
            for r in self._open.values():
                r.close()
            self._open.clear()

    def __repr__(self) -> str:
        return (f"ntcb.Dataset({self.location!r}, {len(self)} samples of {self.layout.tokens}x{self.layout.dim} "
                f"in {self.num_shards} shards, codec {self.codec})")


class _LocalSource:
    def __init__(self, path: str):
        self.path = path
        self.f = open(path, "rb")
        self.size = os.fstat(self.f.fileno()).st_size

    def read_at(self, n: int, off: int) -> bytes:
        return os.pread(self.f.fileno(), n, off)

    def close(self) -> None:
        self.f.close()
