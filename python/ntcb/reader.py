"""The .ntcb reader: samples by index or key as numpy arrays."""

from __future__ import annotations

import json
import os
import threading
from typing import Iterable, Sequence

import numpy as np

from . import _models as _modelref
from . import _native, _remote
from ._api import SampleAPI
from . import codecs as _codecs
from .container import MAX_KEY_LEN, Container, _Bytes, _File
from .errors import CorruptError, NotFound, NtcbError

FORMAT_NAME = "ntcb"
_MAX_META_FIELDS = 256


def _parse_metadata(raw: bytes, want_format: str) -> tuple[dict, _codecs.Layout]:
    """Decodes and checks the metadata block (pkg/ntcb parseMetadata)."""
    try:
        meta = json.loads(raw.decode("utf-8")) if raw else {}
    except (UnicodeDecodeError, ValueError) as e:
        raise CorruptError(f"metadata: {e}") from None
    if not isinstance(meta, dict):
        raise CorruptError("metadata: not a JSON object")
    if meta.get("format") != want_format:
        raise CorruptError(f"metadata format {meta.get('format')!r}, want {want_format!r}")
    layout = _codecs.Layout.from_json(meta.get("layout"))
    layout.validate()
    user = meta.get("meta") or {}
    if not isinstance(user, dict) or len(user) > _MAX_META_FIELDS:
        raise CorruptError("metadata: bad or too many user fields")
    if meta.get("codec") not in _codecs.NAMES:
        raise CorruptError(f"metadata: unknown codec {meta.get('codec')!r} (this reader knows {_codecs.names()})")
    mf = meta.get("model_file", "")
    if not isinstance(mf, str) or mf and (len(mf) > 255 or "/" in mf or "\\" in mf or mf[0] == "."):
        raise CorruptError(f"metadata: model file {mf!r} is not a plain file name")
    return meta, layout


class Reader(SampleAPI):
    """Random access to the samples of one .ntcb file.

    ``len(r)`` samples; ``r[i]`` is sample i as a float32 array [tokens, dim]
    (negative indices and slices work as for lists); ``r.keys()`` lists the
    keys in storage order; ``r.get(key)`` reads by key; ``r.read([i, j])``
    returns [n, tokens, dim]; ``r.meta`` is the metadata dict (codec, layout,
    shape, dtype, the user's "meta" pairs).

    Opening reads the header, footer, index and metadata only and checks them
    all, in Python. Samples are decoded by the native decoder (libntcb.so,
    the Go reader) when it is built, else by the pure-Python reference
    decoder (see ``decoder``); reading a sample reads and checks (CRC) the
    chunk that holds it, and the last decoded chunks are kept. Errors are
    ntcb.NtcbError subclasses naming the file, the same from either
    decoder. A Reader may be shared by threads (native decoding runs
    without the GIL), and survives fork and pickling (DataLoader workers):
    it reopens the file in the child when unpickled.
    """

    def __init__(self, path: str | os.PathLike, *, dtype=np.float32, model=None, decoder: str | None = None,
                 _container: Container | None = None, _models: "_modelref.Models | None" = None, _locators=()):
        self.path = os.fspath(path) if path is not None else None
        self.dtype = np.dtype(dtype)
        self.model_path = model
        if decoder is not None and decoder not in _native.MODES:
            raise ValueError(f"decoder {decoder!r}: want one of {', '.join(_native.MODES)}")
        self._decoder_choice = decoder
        if _models is None:
            files = [] if model is None else ([model] if isinstance(model, (str, os.PathLike)) else list(model))
            _models = _modelref.Models(files)
        self._models = _models
        self._locators = list(_locators) + _modelref.file_locators(self.path)
        if _container is not None:
            self._c = _container
        elif _remote.is_url(self.path):
            self._c = Container(_src=_remote.open_source(self.path))
        else:
            self._c = Container(self.path)
        try:
            self._init()
        except NtcbError as e:
            self._c.close()
            raise e.with_path(self._c.path) from None

    @classmethod
    def from_bytes(cls, data: bytes, *, dtype=np.float32, decoder: str | None = None) -> "Reader":
        """Reads a .ntcb file held in memory."""
        return cls(None, dtype=dtype, decoder=decoder, _container=Container.from_bytes(data))

    def _init(self) -> None:
        c = self._c
        self.meta, self.layout = _parse_metadata(c.metadata, FORMAT_NAME)
        l = self.layout
        shape = self.meta.get("shape")
        if shape != [len(c.samples), l.tokens, l.dim]:
            raise CorruptError(f"metadata shape {shape} does not match {len(c.samples)} samples of {l.tokens}x{l.dim}")
        for i, s in enumerate(c.samples):
            if s.tokens != l.tokens or s.dim != l.dim:
                raise CorruptError(f"sample {i} ({s.key!r}) is {s.tokens}x{s.dim}, the layout {l.tokens}x{l.dim}")
        for i, ch in enumerate(c.chunks):
            try:
                l.check_count(ch.count)
                _codecs.codec_class(ch.codec)
            except NtcbError as e:
                raise e.with_path(None, f"chunk {i}") from None
        self._codecs: dict[int, _codecs.Codec] = {}
        self._lock = threading.Lock()
        self._cached = -1
        self._cache: np.ndarray | None = None
        self._native: _native.Handle | None = None
        self._native_pid = None
        self._native_lock = threading.Lock()

    # -- pickling (DataLoader workers started with spawn) -----------------

    def __getstate__(self):
        if self.path is None:
            raise TypeError("a Reader over bytes in memory cannot be pickled")
        return {"path": self.path, "dtype": self.dtype.str, "model": self.model_path, "decoder": self._decoder_choice}

    def __setstate__(self, state):
        self.__init__(state["path"], dtype=np.dtype(state["dtype"]), model=state.get("model"),
                      decoder=state.get("decoder"))

    # -- the decoder ------------------------------------------------------

    @property
    def decoder(self) -> str:
        """The decoder that reads this file's samples in this process:
        "native" (libntcb.so) or "python" (the reference decoder). Asking
        loads the native decoder when it is to be used."""
        return "native" if self._handle() is not None else "python"

    def _handle(self) -> "_native.Handle | None":
        """The native handle of this file in this process, opened on first
        use; None when samples are decoded in Python."""
        h = self._native
        if h is not None and self._native_pid == os.getpid():
            return h
        if _native.resolve(self._decoder_choice) != "native" or not self._native_capable():
            return None
        with self._native_lock:
            if self._native is not None and self._native_pid == os.getpid():
                return self._native
            src = self._c._src
            if isinstance(src, _File):
                h = _native.Handle(_native.load(), fd=src.f.fileno(), name=self.path)
            elif isinstance(src, _Bytes):
                h = _native.Handle(_native.load(), data=src.data, name=self.path)
            else:  # a remote file: the library reads through its read_at
                h = _native.Handle(_native.load(), source=src, name=self.path)
            if h.shape() != self.shape:
                h.close()
                raise CorruptError(f"the native decoder reads {h.shape()} where the file was opened as {self.shape} "
                                   "(was the file replaced?)", self.path)
            try:
                for m in self._c.models:
                    if m.external:  # found (and checked) as for the Python decoder; the library checks again
                        blob, _ = self._models.find(m.codec, m.sha256, m.length, self.meta.get("model_file", ""),
                                                    self._locators)
                        h.add_model(m.codec, blob)
            except NtcbError as e:
                h.close()
                raise e.with_path(self.path) from None
            self._native, self._native_pid = h, os.getpid()
            return h

    def _native_capable(self) -> bool:
        """Whether the native decoder can read this file: files, bytes and
        any source with read_at (remote files, read back through it), with
        the models they hold or hold by reference (found here and
        handed over); a file with no model, read with one from a .ntcm file
        (model=), is decoded in Python."""
        src = self._c._src
        if not isinstance(src, (_File, _Bytes)) and not (hasattr(src, "read_at") and hasattr(src, "size")):
            return False
        if self.model_path is not None:
            held = {m.codec for m in self._c.models if not m.external}
            if any(ch.codec not in held for ch in self._c.chunks):
                return False
        return True

    def _decode_native(self, h: "_native.Handle", idx, dtype=None) -> np.ndarray:
        """Samples idx through the native decoder, in dtype (the reader's by default)."""
        dtype = self.dtype if dtype is None else np.dtype(dtype)
        native_dt = np.float16 if dtype == np.float16 else np.float32
        out = np.empty((len(idx), self.layout.tokens, self.layout.dim), dtype=native_dt)
        if len(idx):
            try:
                h.read(idx, out)
            except NtcbError as e:
                raise e.with_path(self.path) from None
        return out if out.dtype == dtype else out.astype(dtype)

    # -- metadata ---------------------------------------------------------

    @property
    def codec(self) -> str:
        """The codec's name."""
        return self.meta["codec"]

    @property
    def version(self) -> int:
        return self._c.version

    @property
    def num_chunks(self) -> int:
        return len(self._c.chunks)

    def __len__(self) -> int:
        return len(self._c.samples)

    def keys(self) -> list[str]:
        """The sample keys in storage order."""
        return [s.key for s in self._c.samples]

    def key(self, i: int) -> str:
        return self._c.samples[self._index(i)].key

    def index(self, key: str) -> int:
        """The index of the sample with the key; raises ntcb.NotFound (a KeyError)."""
        if not isinstance(key, str) or len(key.encode("utf-8", "surrogatepass")) > MAX_KEY_LEN:
            raise NotFound(f"key {key!r}: not found", self.path)
        return self._c.lookup(key)

    def __contains__(self, key) -> bool:
        return isinstance(key, str) and key in self._c.keys

    # -- decoding ---------------------------------------------------------

    def _codec(self, cid: int) -> _codecs.Codec:
        c = self._codecs.get(cid)
        if c is None:
            cls = _codecs.codec_class(cid)
            ext = next((m for m in self._c.models if m.codec == cid and m.external), None)
            if ext is not None:
                try:
                    model, _ = self._models.find(cid, ext.sha256, ext.length, self.meta.get("model_file", ""), self._locators)
                except NtcbError as e:
                    raise e.with_path(self.path) from None
            else:
                model = self._c.read_model(cid)
            if model is None and self.model_path is not None:
                files = [self.model_path] if isinstance(self.model_path, (str, os.PathLike)) else self.model_path
                model = next((b for b in (_read_model_file(os.fspath(f), cid) for f in files) if b is not None), None)
            try:
                c = cls(self.layout, model)
            except NtcbError as e:
                raise e.with_path(self.path, f"{cls.name} model") from None
            self._codecs[cid] = c
        return c

    def read_chunk(self, i: int) -> np.ndarray:
        """Decodes chunk i: its samples as float32 [count, tokens, dim]."""
        if not 0 <= i < len(self._c.chunks):
            raise IndexError(f"chunk {i} out of range [0, {len(self._c.chunks)})")
        ch = self._c.chunks[i]
        h = self._handle()
        if h is not None:
            return self._decode_native(h, range(ch.first, ch.first + ch.count), np.float32)
        codec = self._codec(ch.codec)
        return self._decode(codec, self._c.read_chunk(i), ch.count, f"chunk {i} at offset {ch.offset}")

    def _decode_range(self, i: int, first: int, n: int) -> np.ndarray:
        """Decodes samples [first, first+n) of split chunk i, reading only the
        chunk's head and their parts: float32 [n, tokens, dim]."""
        ch = self._c.chunks[i]
        codec = self._codec(ch.codec)
        payload = self._c.read_sample_range(i, first, n)
        return self._decode(codec, payload, n, f"chunk {i} at offset {ch.offset}, samples {ch.first + first}+{n}")

    def _decode(self, codec, payload: bytes, n: int, what: str) -> np.ndarray:
        try:
            out = codec.decode(payload, n)
        except NtcbError as e:
            raise e.with_path(self.path, what) from None
        except (ValueError, IndexError, OverflowError) as e:  # a decoder bug must not pass as data
            raise CorruptError(f"{what}: {e}", self.path) from None
        if out.shape != (n, self.layout.tokens, self.layout.dim):
            raise CorruptError(f"{what}: decoded to shape {out.shape}", self.path)
        return out

    def _chunk_cached(self, ci: int) -> np.ndarray:
        with self._lock:
            if self._cached != ci:
                self._cached, self._cache = -1, None
                self._cache = self.read_chunk(ci)
                self._cached = ci
            return self._cache

    def read_sample(self, i: int) -> np.ndarray:
        """Sample i as an array [tokens, dim] of the reader's dtype (a copy).

        Of a split chunk (container version 2) only the chunk's head and the
        sample's part are read and decoded; a chunk that is not split is
        decoded whole and kept for the next call."""
        i = self._index(i)
        h = self._handle()
        if h is not None:
            return self._decode_native(h, [i])[0]
        s = self._c.samples[i]
        if self._c.chunks[s.chunk].split:
            return self._decode_range(s.chunk, s.pos, 1)[0].astype(self.dtype, copy=False)
        return self._chunk_cached(s.chunk)[s.pos].astype(self.dtype, copy=True)

    def read(self, indices: Iterable) -> np.ndarray:
        """Samples by index (ints) or key (strs), in the given order, as
        [n, tokens, dim]. Of a split chunk, each run of consecutive wanted
        samples is read and decoded once; other chunks are decoded once,
        whole."""
        idx = [self.index(k) if isinstance(k, str) else self._index(k) for k in indices]
        h = self._handle()
        if h is not None:
            return self._decode_native(h, idx)
        out = np.empty((len(idx), self.layout.tokens, self.layout.dim), dtype=self.dtype)
        by_chunk: dict[int, list[tuple[int, int]]] = {}
        for j, i in enumerate(idx):
            s = self._c.samples[i]
            by_chunk.setdefault(s.chunk, []).append((j, s.pos))
        for ci, items in by_chunk.items():
            if not self._c.chunks[ci].split:
                vals = self._chunk_cached(ci)
                out[[j for j, _ in items]] = vals[[p for _, p in items]]
                continue
            for first, n in _runs(sorted({p for _, p in items})):
                vals = self._decode_range(ci, first, n)
                for j, p in items:
                    if first <= p < first + n:
                        out[j] = vals[p - first]
        return out

    def verify(self) -> None:
        """Checks every checksum and decodes every chunk; raises on the first problem."""
        self._c.verify()
        for i in range(len(self._c.chunks)):
            self.read_chunk(i)

    # -- torch --------------------------------------------------------------

    def read_torch(self, indices: Sequence, device="cuda", dtype=None):
        """Samples by index or key as a torch tensor [n, tokens, dim] on device.

        On a CUDA device, with the CUDA build of the native decoder
        (libntcb_cuda.so, loaded by a process where torch has initialised
        CUDA before its first decode), the samples are decoded on the GPU
        (pkg/cuda): only the compressed payloads cross PCIe, and the
        entropy decoding and inverse transform run there, in torch's
        primary context. The call waits for the work queued on torch's
        current stream first, and returns when the tensor is complete.

        Otherwise, with the native decoder, the samples are decoded on the
        CPU and copied (as float16 when the device is not the CPU, half the
        bytes of float32). With the Python decoder, the fixed codecs decode
        on the CPU and for the learned codec ("ntc") only the entropy
        decoding runs on the CPU and the inverse transform (block DCT, basis
        projection) runs on the device. Imports torch only when called.
        """
        import torch

        tdtype = dtype if dtype is not None else torch.float32
        dev = torch.device(device)
        if dev.type == "cuda" and dev.index is None:
            dev = torch.device("cuda", torch.cuda.current_device())
        idx = [self.index(k) if isinstance(k, str) else self._index(k) for k in indices]
        if dev.type == "cuda":
            torch.cuda.init()  # before the first decode, so that the CUDA build can be chosen
        h = self._handle()
        if h is not None and dev.type == "cuda" and _native.has_cuda():
            out = torch.empty((len(idx), self.layout.tokens, self.layout.dim),
                              dtype=torch.float16 if tdtype == torch.float16 else torch.float32, device=dev)
            torch.cuda.current_stream(dev).synchronize()  # the decoder writes out from its own streams
            try:
                h.cuda_read(idx, dev.index, out)
            except NtcbError as e:
                raise e.with_path(self.path) from None
            return out if out.dtype == tdtype else out.to(tdtype)
        if h is not None:
            half = tdtype == torch.float16 or dev.type != "cpu"
            t = torch.from_numpy(self._decode_native(h, idx, np.float16 if half else np.float32))
            return t.to(device=dev, dtype=tdtype)
        out = torch.empty((len(idx), self.layout.tokens, self.layout.dim), dtype=tdtype, device=dev)
        by_chunk: dict[int, list[tuple[int, int]]] = {}
        for j, i in enumerate(idx):
            s = self._c.samples[i]
            by_chunk.setdefault(s.chunk, []).append((j, s.pos))
        for ci, items in by_chunk.items():
            ch = self._c.chunks[ci]
            with self._lock:
                dec = self._codec(ch.codec)
            if hasattr(dec, "reconstruct_torch"):
                payload = self._c.read_chunk(ci)
                try:
                    vals = dec.reconstruct_torch(dec.decode_coefficients(payload, ch.count), dev)
                except NtcbError as e:
                    raise e.with_path(self.path, f"chunk {ci} at offset {ch.offset}") from None
            else:
                vals = torch.from_numpy(self._chunk_cached(ci)).to(dev)
            js = torch.tensor([j for j, _ in items], device=dev)
            ps = torch.tensor([p for _, p in items], device=dev)
            out[js] = vals[ps].to(tdtype)
        return out

    # -- lifetime -----------------------------------------------------------

    def close(self) -> None:
        h, self._native = self._native, None
        if h is not None:
            h.close()
        self._c.close()

    def __repr__(self) -> str:
        return f"ntcb.Reader({self.path!r}, {len(self)} samples of {self.layout.tokens}x{self.layout.dim}, codec {self.codec})"


def _runs(positions: list[int]) -> list[tuple[int, int]]:
    """Runs (first, count) of consecutive numbers in a sorted list without repeats."""
    runs: list[tuple[int, int]] = []
    for p in positions:
        if runs and runs[-1][0] + runs[-1][1] == p:
            runs[-1] = (runs[-1][0], runs[-1][1] + 1)
        else:
            runs.append((p, 1))
    return runs


def _read_model_file(path: str, cid: int) -> bytes | None:
    """The model blob of codec cid in a .ntcm file (written by 'ntc fit')."""
    c = Container(path)
    try:
        try:
            meta = json.loads(bytes(c.metadata).decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as e:
            raise CorruptError(f"metadata: {e}", path) from None
        if not isinstance(meta, dict) or meta.get("format") != "ntcm":
            raise CorruptError(f"not a model file (metadata format {meta.get('format') if isinstance(meta, dict) else None!r})", path)
        return c.read_model(cid)
    finally:
        c.close()


def open(path, *, dtype=np.float32, model=None, decoder: str | None = None):  # noqa: A001
    """Opens a .ntcb file or a dataset for reading: a path, an http(s) URL
    (read with Range requests), or any fsspec URL (s3://, gs://, ...) when
    fsspec and its backend are installed.

    A dataset (a directory with an index.json, the index.json itself, or a
    URL that does not end in .ntcb or .ntcm) gives an ntcb.Dataset, one
    reader over all its shards with the same API; a file gives an
    ntcb.Reader.

    dtype is the dtype of the arrays returned (float32 by default: what the
    decoder produces; float16 is produced directly too). model names a .ntcm
    model file (or a list of them) for a file that holds its model by
    reference (or not at all); by default the model is looked for next to
    the file and in its dataset, by hash. decoder is "native", "python" or
    "auto" (native when built); None follows $NTCB_DECODER (default auto).
    """
    from .dataset import Dataset

    loc = os.fspath(path) if not isinstance(path, str) else path
    low = loc.lower().rstrip("/")
    if _remote.is_url(loc):
        is_file = low.endswith((".ntcb", ".ntcm"))
    else:
        is_file = not os.path.isdir(loc) and not low.endswith(".json")
    if is_file:
        return Reader(loc, dtype=dtype, model=model, decoder=decoder)
    return Dataset(loc, dtype=dtype, model=model, decoder=decoder)
