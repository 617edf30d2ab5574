"""Decoders of the .ntcb codecs, ported from pkg/codec (Go).

A codec is looked up by its on-disk id and made for a layout and an optional
model blob; ``decode(payload, n)`` returns the n samples of one chunk as a
float32 array of shape [n, tokens, dim], or raises CorruptError. Nothing here
does file I/O.

Ports, with the Go source they follow:

========  ==  ==============================  ==================================
name      id  payload                         Go
========  ==  ==============================  ==================================
fp16       1  byte-shuffled float16, zstd     pkg/codec/fp16.go, zstd.go
int8       2  v1, per token f16 scale + int8  pkg/codec/fixed.go
fp8        3  v1, per token f16 scale + e4m3  pkg/codec/fp8.go
int4       4  v1, per 32 values f16 + nibble  pkg/codec/int4.go
ntc        5  learned: see ntcb._ntc          pkg/codec/ntc.go, rc.go
========  ==  ==============================  ==================================
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass

import numpy as np

from .errors import CorruptError, UnknownCodecError

# MaxValues in pkg/codec: no chunk decodes to more values than this.
MAX_VALUES = 1 << 28


@dataclass(frozen=True)
class Layout:
    """Tokens = prefix + grid_h * grid_w rows of dim values (pkg/codec Layout)."""

    tokens: int
    dim: int
    prefix: int
    grid_h: int
    grid_w: int

    @classmethod
    def from_json(cls, d) -> "Layout":
        if not isinstance(d, dict):
            raise CorruptError("metadata: layout is not an object")
        vals = []
        for k in ("tokens", "dim", "prefix_tokens", "grid_h", "grid_w"):
            v = d.get(k, 0)
            if not isinstance(v, int) or isinstance(v, bool):
                raise CorruptError(f"metadata: layout field {k} is {v!r}")
            vals.append(v)
        return cls(*vals)

    def validate(self) -> None:
        if self.tokens <= 0 or self.dim <= 0:
            raise CorruptError(f"bad token layout: {self.tokens} tokens x {self.dim} dims")
        if self.prefix < 0 or self.grid_h < 0 or self.grid_w < 0:
            raise CorruptError("bad token layout: negative prefix or grid")
        if self.tokens * self.dim > MAX_VALUES:
            raise CorruptError(f"bad token layout: {self.tokens} x {self.dim} values per sample exceeds {MAX_VALUES}")
        if self.prefix + self.grid_h * self.grid_w != self.tokens:
            raise CorruptError(
                f"bad token layout: {self.prefix} prefix + {self.grid_h}x{self.grid_w} grid != {self.tokens} tokens"
            )

    @property
    def values(self) -> int:
        return self.tokens * self.dim

    def check_count(self, n: int) -> int:
        if n <= 0 or n * self.values > MAX_VALUES:
            raise CorruptError(f"bad token layout: {n} samples of {self.values} values")
        return n * self.values


def f16_to_f32(h: np.ndarray) -> np.ndarray:
    """float16 bit patterns (uint16) to float32 values."""
    return np.ascontiguousarray(h, dtype="<u2").view(np.float16).astype(np.float32)


class Codec:
    """Base class of the decoders."""

    name = ""
    id = 0
    lossless = False

    def __init__(self, layout: Layout, model: bytes | None):
        if model:
            raise CorruptError(f"{self.name} takes no model, got {len(model)} bytes")
        self.layout = layout

    def decode(self, payload: bytes, n: int) -> np.ndarray:
        raise NotImplementedError


# ---------------------------------------------------------------- fp16 ---

_SMALL_FRAME = 256
_SMALL_FRAME_SLACK = 64

_zstd = None


def _zstd_decompress(payload: bytes, want: int) -> bytes:
    """Decodes one zstd frame that must expand to exactly want bytes, with
    the checks of pkg/codec zstdDecompress (declared size before output)."""
    global _zstd
    try:
        import zstandard
    except ImportError as e:  # pragma: no cover
        raise ImportError("decoding fp16 chunks needs the zstandard module (Debian: python3-zstandard)") from e
    try:
        params = zstandard.get_frame_parameters(payload)
    except zstandard.ZstdError as e:
        raise CorruptError(f"zstd header: {e}") from None
    has_fcs = params.content_size != zstandard.CONTENTSIZE_UNKNOWN
    if has_fcs and params.content_size != want:
        raise CorruptError(f"zstd frame holds {params.content_size} bytes, want {want}")
    if not has_fcs and (want >= _SMALL_FRAME or len(payload) > want + _SMALL_FRAME_SLACK):
        raise CorruptError(f"zstd frame of {len(payload)} bytes without a content size, want {want}")
    if _zstd is None:
        _zstd = zstandard.ZstdDecompressor()
    try:
        dobj = _zstd.decompressobj()
        out = dobj.decompress(payload)
        rest = dobj.unused_data
    except zstandard.ZstdError as e:
        raise CorruptError(f"zstd: {e}") from None
    if len(out) != want or rest:
        raise CorruptError(f"zstd payload decoded to {len(out)} bytes (+{len(rest)} bytes after the frame), want {want}")
    return out


_FP16_VERSION = 2


def _unshuffle(lo: bytes, hi: bytes) -> np.ndarray:
    h = np.frombuffer(lo, dtype=np.uint8).astype(np.uint16) | (np.frombuffer(hi, dtype=np.uint8).astype(np.uint16) << 8)
    return f16_to_f32(h)


class FP16(Codec):
    """Payload version 2: a version byte, then per sample two frames (the low
    bytes of its values, then their high bytes), each a uint32 length and a
    zstd frame. Version 1 (one frame for the chunk, starting with the zstd
    magic) is still read."""

    name = "fp16"
    id = 1
    lossless = True

    def decode(self, payload: bytes, n: int) -> np.ndarray:
        nv = self.layout.check_count(n)
        shape = (n, self.layout.tokens, self.layout.dim)
        if len(payload) > 0 and payload[0] != _FP16_VERSION:
            raw = _zstd_decompress(payload, 2 * nv)
            return _unshuffle(raw[:nv], raw[nv:]).reshape(shape)
        if len(payload) == 0 or 8 * n > len(payload) - 1:
            raise CorruptError(f"fp16 payload of {len(payload)} bytes for {n} samples")
        vs = self.layout.tokens * self.layout.dim
        out = np.empty(n * vs, dtype=np.float32)
        p = 1
        for s in range(n):
            halves = []
            for _ in range(2):
                if len(payload) - p < 4:
                    raise CorruptError(f"fp16 payload ends at sample {s} of {n}")
                (length,) = struct.unpack_from("<I", payload, p)
                if length > len(payload) - p - 4:
                    raise CorruptError(f"fp16 sample {s}: frame of {length} bytes, {len(payload) - p - 4} left")
                try:
                    halves.append(_zstd_decompress(payload[p + 4 : p + 4 + length], vs))
                except CorruptError as e:
                    raise CorruptError(f"sample {s}: {e}") from None
                p += 4 + length
            out[s * vs : (s + 1) * vs] = _unshuffle(*halves)
        if p != len(payload):
            raise CorruptError(f"fp16 payload has {len(payload) - p} bytes after its {n} samples")
        return out.reshape(shape)


# ---------------------------------------------------- fixed-rate codecs ---

_FIXED_VERSION = 1


def _e4m3_table() -> np.ndarray:
    t = np.zeros(256, dtype=np.float32)
    for i in range(256):
        e, m = (i >> 3) & 0xF, i & 7
        if e == 0xF and m == 7:
            v = 0.0
        elif e == 0:
            v = m / 8 * math.ldexp(1, -6)
        else:
            v = (1 + m / 8) * math.ldexp(1, e - 7)
        t[i] = -v if i & 0x80 else v
    return t


E4M3 = _e4m3_table()


class _Fixed(Codec):
    """A payload is a version byte, then per token its groups, each a float16
    scale and the group's codes (pkg/codec/fixed.go)."""

    group_size = 0  # 0: one group per token

    def _group(self) -> int:
        return self.group_size or self.layout.dim

    @staticmethod
    def _bytes_for(g: int) -> int:
        return g

    def _unpack(self, codes: np.ndarray, g: int) -> np.ndarray:
        """codes: [rows, bytes_for(g)] uint8 -> [rows, g] float32 code values."""
        raise NotImplementedError

    def _groups(self):
        d, g = self.layout.dim, self._group()
        return [(off, min(g, d - off)) for off in range(0, d, g)]

    def token_bytes(self) -> int:
        return sum(2 + self._bytes_for(g) for _, g in self._groups())

    def decode(self, payload: bytes, n: int) -> np.ndarray:
        nv = self.layout.check_count(n)
        rows = n * self.layout.tokens
        tb = self.token_bytes()
        want = 1 + rows * tb
        if len(payload) != want:
            raise CorruptError(f"{self.name} payload has {len(payload)} bytes, want {want}")
        if payload[0] != _FIXED_VERSION:
            raise CorruptError(f"{self.name} payload version {payload[0]}")
        body = np.frombuffer(payload, dtype=np.uint8, offset=1).reshape(rows, tb)
        out = np.empty((rows, self.layout.dim), dtype=np.float32)
        p = 0
        for off, g in self._groups():
            h = body[:, p].astype(np.uint16) | (body[:, p + 1].astype(np.uint16) << 8)
            bad = ((h & 0x7C00) == 0x7C00) | ((h & 0x8000) != 0)
            if bad.any():
                r = int(np.argmax(bad))
                raise CorruptError(f"{self.name} scale {int(h[r]):#06x} at byte {1 + r * tb + p}")
            p += 2
            nb = self._bytes_for(g)
            vals = self._unpack(body[:, p : p + nb], g)
            out[:, off : off + g] = vals * f16_to_f32(h)[:, None]
            p += nb
        return out.reshape(n, self.layout.tokens, self.layout.dim)


class Int8(_Fixed):
    name = "int8"
    id = 2

    def _unpack(self, codes, g):
        return codes.view(np.int8).astype(np.float32)


class FP8(_Fixed):
    name = "fp8"
    id = 3

    def _unpack(self, codes, g):
        return E4M3[codes]


class Int4(_Fixed):
    name = "int4"
    id = 4
    group_size = 32

    @staticmethod
    def _bytes_for(g: int) -> int:
        return (g + 1) // 2

    def _unpack(self, codes, g):
        b = codes.view(np.int8)
        lo = (b << 4) >> 4  # arithmetic shifts sign-extend the nibbles
        hi = b >> 4
        v = np.empty((codes.shape[0], 2 * codes.shape[1]), dtype=np.float32)
        v[:, 0::2] = lo
        v[:, 1::2] = hi
        return v[:, :g]


# ------------------------------------------------------------- registry ---

CODECS: dict[int, type] = {c.id: c for c in (FP16, Int8, FP8, Int4)}


def _register_ntc() -> None:
    try:
        from ._ntc import NTC
    except ImportError:  # pragma: no cover - the port is optional
        return
    CODECS[NTC.id] = NTC


_register_ntc()

NAMES: dict[str, int] = {c.name: i for i, c in CODECS.items()}


def codec_class(codec_id: int) -> type:
    try:
        return CODECS[codec_id]
    except KeyError:
        raise UnknownCodecError(f"unknown codec: id {codec_id} (this reader knows {sorted(NAMES)})") from None


def names() -> list[str]:
    """The codecs this reader decodes, by name."""
    return sorted(NAMES)
