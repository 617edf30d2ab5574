"""The .ntcb container (docs/format.md, versions 1 and 2): header,
checksummed blocks, index and footer.

This module frames bytes, as pkg/container does in Go: it knows nothing of
tokens or codecs. ``Container`` checks everything docs/format.md's "Reading"
section lists when it opens a file (magic, version, footer, index CRC, every
count and offset against the file size and the limits, the tiling rule, the
metadata CRC) and checks each chunk's CRC when the chunk is read. Version 2
adds split chunks (a head and one part per sample, each under its own CRC in
the index, so that ``read_sample_range`` reads one sample without the rest of
its chunk) and models recorded by SHA-256 instead of stored.
"""

from __future__ import annotations

import hashlib
import os
import struct
import threading
from dataclasses import dataclass

from ._crc32c import crc32c
from .errors import (
    BadMagic,
    ChecksumError,
    NtcbError,
    CorruptError,
    ExternalModel,
    NotFound,
    TooLargeError,
    TruncatedError,
    UnsupportedVersion,
)

MAGIC = b"\x89NTCB\r\n\x1a"
FOOTER_MAGIC = b"\x89NTCBEND"

HEADER_SIZE = 16
BLOCK_HEADER_SIZE = 8
BLOCK_CRC_SIZE = 4
BLOCK_OVERHEAD = BLOCK_HEADER_SIZE + BLOCK_CRC_SIZE
FOOTER_SIZE = 28
INDEX_FIXED_SIZE = 32
# Index entry sizes by version: model, chunk, sample without its key.
ENTRY_SIZES = {1: (16, 24, 18), 2: (48, 32, 26)}
MODEL_FLAG_EXTERNAL = 1
CHUNK_FLAG_SPLIT = 1
MIN_FILE_SIZE = HEADER_SIZE + BLOCK_OVERHEAD + BLOCK_OVERHEAD + INDEX_FIXED_SIZE + FOOTER_SIZE

BLOCK_CHUNK = 1
BLOCK_MODEL = 2
BLOCK_METADATA = 3
BLOCK_INDEX = 4
_BLOCK_NAMES = {BLOCK_CHUNK: "chunk", BLOCK_MODEL: "model", BLOCK_METADATA: "metadata", BLOCK_INDEX: "index"}

MAX_CHUNK_SIZE = 1 << 30
MAX_MODEL_SIZE = 256 << 20
MAX_METADATA_SIZE = 16 << 20
MAX_INDEX_SIZE = (1 << 31) - 1
MAX_KEY_LEN = 1024
MAX_SAMPLES = 1 << 28
MAX_CHUNKS = 1 << 24
MAX_MODELS = 256
MAX_SHAPE = (1 << 31) - 1

# On-disk versions this reader accepts.
MIN_VERSION = 1
MAX_VERSION = 2


@dataclass(frozen=True)
class ChunkInfo:
    offset: int  # file offset of the block header
    length: int  # payload bytes
    codec: int  # codec id
    first: int  # first sample
    count: int  # samples
    split: bool = False  # head + one part per sample (version 2)
    head: int = 0  # head length of a split chunk
    head_crc: int = 0  # CRC-32C of the block header and the head


@dataclass(frozen=True)
class ModelInfo:
    codec: int
    offset: int  # 0 for an external model
    length: int
    sha256: bytes = b""  # version 2
    external: bool = False  # recorded by hash only; the blob is elsewhere


@dataclass(frozen=True)
class SampleInfo:
    key: str
    chunk: int
    pos: int
    tokens: int
    dim: int
    part_off: int = 0  # offset of the part in its split chunk's payload
    part_len: int = 0
    part_crc: int = 0


def _block_name(t: int) -> str:
    return _BLOCK_NAMES.get(t, f"type {t}")


def check_block(b: bytes, typ: int, codec: int, length: int) -> None:
    """Checks a whole block (header, payload, CRC): the CRC first, then the header."""
    if len(b) != BLOCK_OVERHEAD + length:
        raise CorruptError(f"block buffer is {len(b)} bytes, want {BLOCK_OVERHEAD + length}")
    n = BLOCK_HEADER_SIZE + length
    got = crc32c(memoryview(b)[:n])
    (want,) = struct.unpack_from("<I", b, n)
    if got != want:
        raise ChecksumError(f"crc {got:#010x}, stored {want:#010x}")
    check_block_header(b, typ, codec, length)


def check_block_header(h: bytes, typ: int, codec: int, length: int) -> None:
    btype, bcodec, reserved, blen = struct.unpack_from("<BBHI", h, 0)
    if btype != typ:
        raise CorruptError(f"block is a {_block_name(btype)} block, index says {_block_name(typ)}")
    if bcodec != codec:
        raise CorruptError(f"block codec {bcodec}, index says {codec}")
    if reserved != 0:
        raise CorruptError(f"block reserved field {reserved:#06x}")
    if blen != length:
        raise CorruptError(f"block length {blen}, index says {length}")


class _File:
    """Positional reads from a file, safe across threads and fork."""

    def __init__(self, path: str):
        self.path = path
        self.f = open(path, "rb")
        self.size = os.fstat(self.f.fileno()).st_size
        self._lock = threading.Lock()

    def read_at(self, n: int, off: int) -> bytes:
        if hasattr(os, "pread"):
            b = os.pread(self.f.fileno(), n, off)
            # pread may return short reads before EOF on some file systems.
            while len(b) < n:
                more = os.pread(self.f.fileno(), n - len(b), off + len(b))
                if not more:
                    break
                b += more
        else:  # pragma: no cover - Windows
            with self._lock:
                self.f.seek(off)
                b = self.f.read(n)
        if len(b) != n:
            raise TruncatedError(f"read {len(b)} of {n} bytes at offset {off}")
        return b

    def close(self) -> None:
        self.f.close()


class _Bytes:
    """Positional reads from bytes in memory."""

    def __init__(self, data: bytes):
        self.path = None
        self.data = bytes(data)
        self.size = len(self.data)

    def read_at(self, n: int, off: int) -> bytes:
        b = self.data[off : off + n]
        if len(b) != n:
            raise TruncatedError(f"read {len(b)} of {n} bytes at offset {off}")
        return b

    def close(self) -> None:
        pass


class Container:
    """The framing of one .ntcb file: header, footer, index and metadata.

    Open with ``Container(path)`` or ``Container.from_bytes(data)``. Errors
    are subclasses of ntcb.NtcbError and name the file.
    """

    def __init__(self, path: str | os.PathLike | None = None, *, _src=None):
        self._src = _src if _src is not None else _File(os.fspath(path))
        self.path = self._src.path
        try:
            self._open()
        except Exception as e:
            self._src.close()
            if hasattr(e, "with_path"):
                raise e.with_path(self.path) from None
            raise

    @classmethod
    def from_bytes(cls, data: bytes) -> "Container":
        return cls(_src=_Bytes(data))

    @property
    def size(self) -> int:
        return self._src.size

    def close(self) -> None:
        self._src.close()

    # -- opening -----------------------------------------------------------

    def _open(self) -> None:
        size = self._src.size
        self._read_header(size)
        self._read_footer(size)
        idx = self._read_at(BLOCK_OVERHEAD + self.index_length, self.index_offset, f"index block at offset {self.index_offset}")
        try:
            check_block(idx, BLOCK_INDEX, 0, self.index_length)
        except NtcbError as e:  # NtcbError
            raise e.with_path(None, f"index block at offset {self.index_offset}") from None
        try:
            meta_len = self._parse_index(memoryview(idx)[BLOCK_HEADER_SIZE : BLOCK_HEADER_SIZE + self.index_length])
        except NtcbError as e:
            raise e.with_path(None, "index") from None
        self._check_tiling(meta_len)
        meta = self._read_at(BLOCK_OVERHEAD + meta_len, self.meta_offset, f"metadata block at offset {self.meta_offset}")
        try:
            check_block(meta, BLOCK_METADATA, 0, meta_len)
        except NtcbError as e:
            raise e.with_path(None, f"metadata block at offset {self.meta_offset}") from None
        self.metadata = meta[BLOCK_HEADER_SIZE : BLOCK_HEADER_SIZE + meta_len]

    def _read_at(self, n: int, off: int, what: str) -> bytes:
        try:
            return self._src.read_at(n, off)
        except TruncatedError as e:
            raise e.with_path(None, what) from None

    def _read_header(self, size: int) -> None:
        n = min(size, HEADER_SIZE)
        h = self._read_at(n, 0, "header")
        m = min(n, len(MAGIC))
        if h[:m] != MAGIC[:m]:
            raise BadMagic(f"header starts with {h[:m]!r}: not an ntcb file (bad magic)")
        if size < MIN_FILE_SIZE:
            raise TruncatedError(f"file is {size} bytes, less than the minimum {MIN_FILE_SIZE}")
        version, flags, reserved = struct.unpack_from("<HHI", h, 8)
        if not MIN_VERSION <= version <= MAX_VERSION:
            raise UnsupportedVersion(f"header: version {version} (this reader reads {MIN_VERSION} to {MAX_VERSION})")
        self.version = version
        if flags != 0:
            raise CorruptError(f"header flags {flags:#06x}, want 0")
        if reserved != 0:
            raise CorruptError(f"header reserved field {reserved:#010x}, want 0")

    def _read_footer(self, size: int) -> None:
        fo = size - FOOTER_SIZE
        f = self._read_at(FOOTER_SIZE, fo, f"footer at offset {fo}")
        if f[20:28] != FOOTER_MAGIC:
            raise TruncatedError(f"no footer magic at offset {fo + 20} (incomplete write?)")
        got = crc32c(f[:16])
        off, length, version, reserved, want = struct.unpack_from("<QIHHI", f, 0)
        if got != want:
            raise ChecksumError(f"footer at offset {fo}: crc {got:#010x}, stored {want:#010x}")
        if version != self.version:
            raise CorruptError(f"footer version {version}, header version {self.version}")
        if reserved != 0:
            raise CorruptError(f"footer reserved field {reserved:#06x}, want 0")
        if length > MAX_INDEX_SIZE:
            raise TooLargeError(f"index block of {length} bytes > {MAX_INDEX_SIZE}")
        if length < INDEX_FIXED_SIZE:
            raise CorruptError(f"index block of {length} bytes < {INDEX_FIXED_SIZE}")
        if off > fo or length + BLOCK_OVERHEAD > fo - off:
            raise TruncatedError(f"index block at offset {off}, {length} bytes, extends past the footer at {fo}")
        if off + BLOCK_OVERHEAD + length != fo:
            raise CorruptError(f"index block at offset {off}, {length} bytes, does not end at the footer (offset {fo})")
        if off < HEADER_SIZE + BLOCK_OVERHEAD:
            raise CorruptError(f"index block at offset {off} leaves no room for the metadata block")
        self.index_offset = off
        self.index_length = length

    def _parse_index(self, p: memoryview) -> int:
        size = self._src.size
        v2 = self.version >= 2
        model_size, chunk_size, sample_fixed = ENTRY_SIZES[self.version]
        n_models, n_chunks, n_samples, res1, meta_off, meta_len, res2 = struct.unpack_from("<IIIIQII", p, 0)
        if res1 != 0 or res2 != 0:
            raise CorruptError("reserved field not 0")
        if n_models > MAX_MODELS:
            raise TooLargeError(f"{n_models} models > {MAX_MODELS}")
        if n_chunks > MAX_CHUNKS:
            raise TooLargeError(f"{n_chunks} chunks > {MAX_CHUNKS}")
        if n_samples > MAX_SAMPLES:
            raise TooLargeError(f"{n_samples} samples > {MAX_SAMPLES}")
        if n_chunks > n_samples:
            raise CorruptError(f"{n_chunks} chunks but only {n_samples} samples")
        if meta_len > MAX_METADATA_SIZE:
            raise TooLargeError(f"metadata of {meta_len} bytes > {MAX_METADATA_SIZE}")
        need = INDEX_FIXED_SIZE + n_models * model_size + n_chunks * chunk_size + n_samples * (sample_fixed + 1)
        if need > len(p):
            raise CorruptError(
                f"{n_models} models, {n_chunks} chunks and {n_samples} samples need at least {need} bytes, index has {len(p)}"
            )
        if meta_off > size:
            raise TruncatedError(f"metadata block offset {meta_off} beyond the file ({size} bytes)")
        self.meta_offset = meta_off

        pos = INDEX_FIXED_SIZE
        models: list[ModelInfo] = []
        for i in range(n_models):
            off, length, codec, flags, r1, r2 = struct.unpack_from("<QIBBBB", p, pos)
            sha = bytes(p[pos + 16 : pos + 48]) if v2 else b""
            pos += model_size
            if not v2 and (flags or r1 or r2) or v2 and (flags & ~MODEL_FLAG_EXTERNAL or r1 or r2):
                raise CorruptError(f"model {i}: reserved field or flag not 0")
            external = v2 and bool(flags & MODEL_FLAG_EXTERNAL)
            if length > MAX_MODEL_SIZE:
                raise TooLargeError(f"model {i} (codec {codec}): {length} bytes > {MAX_MODEL_SIZE}")
            if off > size:
                raise TruncatedError(f"model {i} (codec {codec}): offset {off} beyond the file ({size} bytes)")
            if external and off != 0:
                raise CorruptError(f"model {i} (codec {codec}): external, with block offset {off}")
            if any(m.codec == codec for m in models):
                raise CorruptError(f"model {i}: second model for codec {codec} (duplicate key)")
            models.append(ModelInfo(codec, off, length, sha, external))
        self.models = models

        chunks: list[ChunkInfo] = []
        nxt = 0
        for i in range(n_chunks):
            off, length, codec, flags, r1, r2, first, count = struct.unpack_from("<QIBBBBII", p, pos)
            head, head_crc = struct.unpack_from("<II", p, pos + 24) if v2 else (0, 0)
            pos += chunk_size
            if not v2 and (flags or r1 or r2) or v2 and (flags & ~CHUNK_FLAG_SPLIT or r1 or r2):
                raise CorruptError(f"chunk {i}: reserved field or flag not 0")
            split = v2 and bool(flags & CHUNK_FLAG_SPLIT)
            if length > MAX_CHUNK_SIZE:
                raise TooLargeError(f"chunk {i}: {length} bytes > {MAX_CHUNK_SIZE}")
            if off > size:
                raise TruncatedError(f"chunk {i}: offset {off} beyond the file ({size} bytes)")
            if first != nxt:
                raise CorruptError(f"chunk {i}: first sample {first}, want {nxt}")
            if count == 0:
                raise CorruptError(f"chunk {i}: no samples")
            if count > n_samples - first:
                raise CorruptError(f"chunk {i}: samples {first}+{count} beyond the {n_samples} samples")
            if split and head > length:
                raise CorruptError(f"chunk {i}: head of {head} bytes in a payload of {length}")
            if not split and (head or head_crc):
                raise CorruptError(f"chunk {i}: head length {head} crc {head_crc:#010x} in a chunk that is not split")
            nxt = first + count
            chunks.append(ChunkInfo(off, length, codec, first, count, split, head, head_crc))
        if nxt != n_samples:
            raise CorruptError(f"chunks hold {nxt} samples, index declares {n_samples}")
        self.chunks = chunks

        tab = bytes(p[pos:])
        tp = 0
        samples: list[SampleInfo] = []
        keys: dict[str, int] = {}
        ci = 0
        part_at = 0
        unpack = struct.Struct("<IIIIIIH" if v2 else "<IIIIH").unpack_from
        for i in range(n_samples):
            while ci < len(chunks) and i >= chunks[ci].first + chunks[ci].count:
                ci += 1
            c = chunks[ci]
            if i == c.first:
                part_at = c.head
            if len(tab) - tp < sample_fixed:
                raise CorruptError(f"sample {i}: entry cut short at index byte {pos + tp}")
            if v2:
                chunk, spos, tokens, dim, part_len, part_crc, klen = unpack(tab, tp)
            else:
                chunk, spos, tokens, dim, klen = unpack(tab, tp)
                part_len = part_crc = 0
            tp += sample_fixed
            if chunk != ci or spos != i - c.first:
                raise CorruptError(
                    f"sample {i}: chunk {chunk} position {spos}, chunk table says chunk {ci} position {i - c.first}"
                )
            if tokens > MAX_SHAPE or dim > MAX_SHAPE:
                raise CorruptError(f"sample {i}: shape {tokens} x {dim} beyond {MAX_SHAPE}")
            if klen > MAX_KEY_LEN:
                raise TooLargeError(f"sample {i}: key of {klen} bytes > {MAX_KEY_LEN}")
            if klen == 0:
                raise CorruptError(f"sample {i}: empty key")
            if klen > len(tab) - tp:
                raise CorruptError(f"sample {i}: key of {klen} bytes cut short at index byte {pos + tp}")
            if not c.split and (part_len or part_crc):
                raise CorruptError(f"sample {i}: part of {part_len} bytes in chunk {ci}, which is not split")
            if part_len > c.length - part_at:
                raise CorruptError(
                    f"sample {i}: part of {part_len} bytes at payload offset {part_at} beyond chunk {ci}'s {c.length} bytes"
                )
            raw = tab[tp : tp + klen]
            tp += klen
            try:
                key = raw.decode("utf-8")
            except UnicodeDecodeError:
                raise CorruptError(f"sample {i}: key {raw!r} is not UTF-8") from None
            if key in keys:
                raise CorruptError(f"samples {keys[key]} and {i}: key {key!r}: duplicate key")
            keys[key] = i
            samples.append(SampleInfo(key, chunk, spos, tokens, dim, part_at, part_len, part_crc))
            part_at += part_len
            if i == c.first + c.count - 1 and c.split and part_at != c.length:
                raise CorruptError(f"chunk {ci}: head and parts cover {part_at} of its {c.length} bytes")
        if tp != len(tab):
            raise CorruptError(f"{len(tab) - tp} bytes after the last sample entry")
        self.samples = samples
        self.keys = keys
        return meta_len

    def _check_tiling(self, meta_len: int) -> None:
        size = self._src.size
        ext = []
        for i, c in enumerate(self.chunks):
            ext.append((c.offset, c.offset + BLOCK_OVERHEAD + c.length, f"chunk {i} at offset {c.offset}"))
        for i, m in enumerate(self.models):
            if not m.external:
                ext.append((m.offset, m.offset + BLOCK_OVERHEAD + m.length, f"model {i} at offset {m.offset}"))
        ext.append((self.meta_offset, self.meta_offset + BLOCK_OVERHEAD + meta_len, f"metadata block at offset {self.meta_offset}"))
        ext.append((self.index_offset, self.index_offset + BLOCK_OVERHEAD + self.index_length, f"index block at offset {self.index_offset}"))
        for off, end, what in ext:
            if end > size:
                raise TruncatedError(f"{what}: ends at {end}, past the end of the file ({size} bytes)")
        ext.sort(key=lambda e: e[0])
        at = HEADER_SIZE
        for off, end, what in ext:
            if off > at:
                raise CorruptError(f"{what}: gap of {off - at} bytes before it")
            if off < at:
                raise CorruptError(f"{what}: overlaps the previous block, which ends at {at}")
            at = end
        if at != size - FOOTER_SIZE:
            raise CorruptError(f"blocks end at {at}, footer starts at {size - FOOTER_SIZE}")

    # -- access ------------------------------------------------------------

    def lookup(self, key: str) -> int:
        try:
            return self.keys[key]
        except KeyError:
            raise NotFound(f"key {key!r}: not found", self.path) from None

    def read_chunk(self, i: int) -> bytes:
        """Reads chunk i's block in one read, checks its CRC and header, returns the payload."""
        c = self.chunks[i]
        what = f"chunk {i} at offset {c.offset}"
        try:
            b = self._src.read_at(BLOCK_OVERHEAD + c.length, c.offset)
            check_block(b, BLOCK_CHUNK, c.codec, c.length)
        except NtcbError as e:
            raise e.with_path(self.path, what) from None
        return b[BLOCK_HEADER_SIZE : BLOCK_HEADER_SIZE + c.length]

    def read_sample_range(self, i: int, first: int, n: int) -> bytes:
        """Returns a payload holding samples [first, first+n) of chunk i.

        For a split chunk that is the head followed by those samples' parts,
        read with at most two reads and checked against the head CRC (which
        covers the block header) and each part's CRC; the codec decodes it as a
        payload of n samples. For a chunk that is not split it is the whole
        payload, as read_chunk returns it.
        """
        c = self.chunks[i]
        if not (0 <= first and 1 <= n and first + n <= c.count):
            raise NotFound(f"chunk {i}: samples {first}+{n} outside its {c.count}", self.path)
        if not c.split:
            return self.read_chunk(i)
        what = f"chunk {i} at offset {c.offset}"
        s0, s1 = self.samples[c.first + first], self.samples[c.first + first + n - 1]
        start, end = s0.part_off, s1.part_off + s1.part_len
        hb = BLOCK_HEADER_SIZE + c.head
        try:
            if start == c.head:
                b = self._src.read_at(BLOCK_HEADER_SIZE + end, c.offset)
                head, parts = b[:hb], memoryview(b)[hb:]
            else:
                head = self._src.read_at(hb, c.offset)
                parts = memoryview(self._src.read_at(end - start, c.offset + BLOCK_HEADER_SIZE + start))
            got = crc32c(head)
            if got != c.head_crc:
                raise ChecksumError(f"head crc {got:#010x}, stored {c.head_crc:#010x}")
            check_block_header(head, BLOCK_CHUNK, c.codec, c.length)
            at = 0
            for j in range(c.first + first, c.first + first + n):
                s = self.samples[j]
                got = crc32c(parts[at : at + s.part_len])
                if got != s.part_crc:
                    raise ChecksumError(
                        f"sample {j} ({s.key!r}) at payload offset {s.part_off}: part crc {got:#010x}, stored {s.part_crc:#010x}"
                    )
                at += s.part_len
        except NtcbError as e:
            raise e.with_path(self.path, what) from None
        return bytes(head[BLOCK_HEADER_SIZE:]) + bytes(parts)

    def read_model(self, codec: int) -> bytes | None:
        """Reads and checks the model blob of a codec id; None if the file has
        none. A model recorded by hash only raises ExternalModel."""
        for i, m in enumerate(self.models):
            if m.codec != codec:
                continue
            if m.external:
                raise ExternalModel(f"model {i} (codec {codec}, sha256 {m.sha256.hex()}): model stored outside the file", self.path)
            what = f"model {i} (codec {codec}) at offset {m.offset}"
            try:
                b = self._src.read_at(BLOCK_OVERHEAD + m.length, m.offset)
                check_block(b, BLOCK_MODEL, codec, m.length)
                blob = b[BLOCK_HEADER_SIZE : BLOCK_HEADER_SIZE + m.length]
                if self.version >= 2 and hashlib.sha256(blob).digest() != m.sha256:
                    raise ChecksumError(f"sha256 {hashlib.sha256(blob).hexdigest()}, recorded {m.sha256.hex()}")
            except NtcbError as e:
                raise e.with_path(self.path, what) from None
            return blob
        return None

    def verify(self) -> None:
        """Checks the CRC and header of every chunk and stored model block, the
        head and part CRCs of split chunks and the hashes of stored models."""
        for i, c in enumerate(self.chunks):
            payload = self.read_chunk(i)
            if c.split:
                what = f"chunk {i} at offset {c.offset}"
                hdr = struct.pack("<BBHI", BLOCK_CHUNK, c.codec, 0, c.length)
                got = crc32c(hdr + payload[: c.head])
                if got != c.head_crc:
                    raise ChecksumError(f"{what}: head crc {got:#010x}, stored {c.head_crc:#010x}", self.path)
                for j in range(c.first, c.first + c.count):
                    s = self.samples[j]
                    got = crc32c(payload[s.part_off : s.part_off + s.part_len])
                    if got != s.part_crc:
                        raise ChecksumError(
                            f"{what}: sample {j} ({s.key!r}): part crc {got:#010x}, stored {s.part_crc:#010x}", self.path
                        )
        for m in self.models:
            if not m.external:
                self.read_model(m.codec)


def build(models: list[tuple[int, bytes]], metadata: bytes) -> bytes:
    """Builds a file with model blocks, a metadata block and no chunks (a
    .ntcm model file, as pkg/ntcb WriteModelFile writes), in the newest
    format version."""

    def block(typ: int, codec: int, payload: bytes) -> bytes:
        b = struct.pack("<BBHI", typ, codec, 0, len(payload)) + payload
        return b + struct.pack("<I", crc32c(b))

    out = bytearray(MAGIC + struct.pack("<HHI", MAX_VERSION, 0, 0))
    entries = b""
    for codec, blob in models:
        entries += struct.pack("<QIB3x", len(out), len(blob), codec) + hashlib.sha256(blob).digest()
        out += block(BLOCK_MODEL, codec, blob)
    meta_off = len(out)
    out += block(BLOCK_METADATA, 0, metadata)
    index = struct.pack("<IIIIQII", len(models), 0, 0, 0, meta_off, len(metadata), 0) + entries
    index_off = len(out)
    out += block(BLOCK_INDEX, 0, index)
    footer = struct.pack("<QIHH", index_off, len(index), MAX_VERSION, 0)
    out += footer + struct.pack("<I", crc32c(footer)) + FOOTER_MAGIC
    return bytes(out)
