"""Decoder of the learned codec "ntc" (codec id 5), ported from
pkg/codec/ntc.go and pkg/codec/rans.go.

Ported version: model versions 9, 8, 7, 6, 5 and 4, payload versions 6, 5
and 4 (ntcModelVersion and ntcPayloadVersion in ntc.go). The Go encoder
writes model version 9 (5 when it appends to a dataset whose model is of
version 5) and payload version 6; its reader, like this one, still reads
model versions 8 to 4 and payload versions 5 and 4. Model version 9 is
version 8, except that with flags bit 1 set (a plain fit) the basis is
stored as Householder vectors: K code widths (2 to 8 bits), then per
vector j a float16 scale and D-1-j codes packed LSB first; the basis is
the product of those reflections (_householder). Model version 7 is version 6
followed by K*32 int8 class step codes (component-major): the dequantized
coefficient of component k and class cl is multiplied by 2^(code/8)
(float32) before the inverse DCTs. Model version 8 has the layout of
version 6, then the class step codes when its flags' bit 0 is set; it codes
the classes of buckets 20 to 27 (sigma/step from 8 to 32) with the trellis,
and only those from bucket 28 plainly (versions 5 to 7: every bucket from
20 plainly); a bucket's tables are laid out as its coding says.

Model layout (little-endian, as loadNTC reads it): a 22-byte header
(version, flags (0; from version 8 bit 0 may be set, in version 9 bit 1), D and K as uint16, the
step code as int32, quality kind and target, the trellis' rate weight, H as
uint16 at byte 16, the outlier threshold as float32 at byte 18); at byte 22 the mean, D float16; in model
version 6 then the prefix means, Prefix x D float16 (Prefix the layout's
prefix token count; prefix token p's mean at [p*D, (p+1)*D)); the basis, H
rows of D float16, then K-H rows each a float16 scale and D int8; the sigma
codes, 32 classes per component; the stored tables' bucket range (lo, hi)
and their frequency tables: model versions 5 to 8 one table of 32 symbols
(12-bit) per plain bucket, two of 17 stored frequencies per trellis bucket,
then 6 centroid offsets per bucket; version 4 one table of 16 symbols
(11-bit) per bucket. Model version 5 is version 6 without the prefix means.
All float16 values of the model must be finite.

Prefix tokens are int8 rows with a float16 scale, value = float32(code) *
scale; with a model of version 6 a row codes the token minus its position's
prefix mean, which decoding adds back (float32, rounded). Outlier grid
tokens are coded like prefix tokens, without a mean, and written over the
grid. Grid tokens go through a 4x4 block DCT whose DC coefficients go
through a second 2-D DCT per group of up to 4x4 blocks; the coefficients are
entropy coded by rANS (payload version 6: 1, 8 or 16 lanes, 32-symbol alias
tables and dependent quantization; versions 5 and 4: two interleaved states
with static per-bucket tables of 16 symbols, escape 15, coding the magnitude
without its lowBits(bucket) low bits) and a raw LSB-first bit stream for
Exp-Golomb escapes, low bits and the signs of nonzero values. The coded
blocks are cut into slices, each decoded by itself. Payload version 6 is
sample-major: a head (step code, slices per sample, lanes per slice), then
one part per sample (prefix rows, outliers, its slices' lengths as uvarints
and streams), so that the head and the parts of any run of samples form a
payload of those samples. Version 5 has the chunk's sections one after the
other and slices of B blocks across samples (a slice table after the
outlier tokens); version 4 has one rANS stream (its length first) and the
raw bits (the rest) for all blocks. Payload version 6 needs a model of
version 5 or 6. Files of other versions are refused with CorruptError.

Entropy decoding is a pure-Python loop over the coded symbols (about a
microsecond each); the inverse transform is vectorized with numpy, or runs
with torch on a device (``reconstruct_torch``). Values match the Go decoder
within float32 rounding (Go may fuse multiply-adds), not bit for bit.
"""

from __future__ import annotations

import math
import struct

import numpy as np

from .codecs import Codec, Layout, f16_to_f32
from .errors import CorruptError

MODEL_VERSION = 8  # what the Go encoder writes (5 when it appends to a dataset of a version 5 model)
MODEL_VERSIONS = (4, 5, 6, 7, 8, 9)  # 4 goes with payload versions 4 and 5; 6 adds the prefix means, 7 class steps, 8 a wider trellis, 9 Householder bases
CLASS_STEP_MAX = 32  # model version 7: class step codes within +-32 (multipliers 2^(code/8))
PAYLOAD_VERSION = 6  # what the Go encoder writes
PAYLOAD_VERSIONS = (4, 5, 6)  # what this reader reads (version 4 has no slices)
MODEL_HEADER = 22
BUCKET_SHIFT = 6
BUCKETS = 14 << (8 - BUCKET_SHIFT)  # 56
BASE = -2 * 256
SKIP = -2 * 256
PAYLOAD_HEADER_V5 = 6 + BUCKETS * 3  # payload versions 4 and 5
HEAD_V6 = 9  # the head of a version 6 payload
STEP_CODE_MAX = 24 * 256
BLOCK_SIDE = 4
BLOCK_SIZE = 16
# Coefficient classes per component: the 15 AC frequencies of a block (class 0
# unused) and the 16 frequencies of the DCT of the DCs of a group of 4x4 blocks.
CLASSES = 2 * BLOCK_SIZE
QUALITY_COS = 2

RANS_BITS = 11
RANS_M = 1 << RANS_BITS
RANS_L = 1 << 16
RANS_SYMS = 16
RANS_ESC = RANS_SYMS - 1
RANS_PAD = 32

# Payload version 6's coder (ans.go): 1, 8 or 16 lanes per slice (symbol i
# in lane i % L), 32 symbols, 12-bit probabilities read through alias
# tables, dependent quantization.
ANS_LANES = (1, 8, 16)
ANS_BITS = 12
ANS_M = 1 << ANS_BITS
ANS_SYMS = 32
ANS_WIDTH = ANS_M // ANS_SYMS
ANS_ESC = 16  # a trellis entry's escape: magnitudes of 16 and more
ANS_ESC_PLAIN = 31  # a plain entry's escape
ANS_PLAIN = 20  # the first bucket coded plainly in model versions 5 to 7
ANS_PLAIN8 = 28  # the first bucket coded plainly from model version 8
FLAG_CLASS_STEPS = 1  # model version 8: class step codes follow the tables
FLAG_HOUSEHOLDER = 2  # model version 9: the basis is stored as Householder vectors
ANS_SYM_TAB = 17  # stored frequencies of a trellis bucket's table
ANS_TRANS = 0x7D28  # the trellis: next state of s after parity p, >> 2*(2s+p) & 3


def _dct_mats() -> list[np.ndarray]:
    """dct[n][f, p]: the orthonormal DCT-II basis of size n (float32, as Go rounds it)."""
    mats = [np.zeros((0, 0), np.float32)]
    for n in range(1, BLOCK_SIDE + 1):
        m = np.zeros((n, n), dtype=np.float32)
        for f in range(n):
            s = math.sqrt(2 / n) if f else math.sqrt(1 / n)
            for p in range(n):
                m[f, p] = s * math.cos(math.pi * (2 * p + 1) * f / (2 * n))
        mats.append(m)
    return mats


DCT = _dct_mats()

# The 16 frequencies u = fy*4 + fx by increasing fy+fx.
CLASS_ORDER = [fy * BLOCK_SIDE + (s - fy) for s in range(2 * BLOCK_SIDE - 1) for fy in range(BLOCK_SIDE)
               if 0 <= s - fy < BLOCK_SIDE]


def _u16(b, p):
    return b[p] | (b[p + 1] << 8)


def _hh_bytes(d: int, widths: bytes) -> int:
    """Bytes of Householder vectors in d dimensions whose codes have the
    given widths (hhBytes): the widths, then for vector j a float16 scale
    and its d-1-j codes packed."""
    return len(widths) + sum(2 + ((d - 1 - j) * w + 7) // 8 for j, w in enumerate(widths))


def _householder(m: bytes, p: int, k: int, d: int) -> np.ndarray:
    """The [K, D] float32 basis of model version 9's Householder vectors at
    byte p (hhBasis, readHH): K code widths (2 to 8 bits, checked), then per vector a
    float16 scale and its d-1-j codes, two's complement, packed LSB first
    (padded to a byte). Row j is column j of H_0 ... H_{K-1} [I_K; 0], H_j =
    I - tau v v^T with v[:j] = 0, v[j] = 1, v[j+1:] = float32(code) * scale
    and tau = 2 / (v . v)."""
    widths = m[p : p + k]
    p += k
    vs = []
    for j, w in enumerate(widths):  # 2 to 8 bits: checked by the caller
        n = d - 1 - j
        (sc,) = struct.unpack_from("<H", m, p)
        if (sc & 0x7C00) == 0x7C00 or sc & 0x8000:
            raise CorruptError(f"ntc model: Householder vector {j}'s scale {sc:#06x} is negative or not finite")
        p += 2
        nb = (n * w + 7) // 8
        bits = np.unpackbits(np.frombuffer(m, dtype=np.uint8, count=nb, offset=p), bitorder="little")[: n * w]
        codes = (bits.reshape(n, w).astype(np.int32) << np.arange(w)).sum(axis=1)
        codes = np.where(codes >= 1 << (w - 1), codes - (1 << w), codes)
        if (codes < -((1 << (w - 1)) - 1)).any():
            raise CorruptError(f"ntc Householder vector {j}: code out of range")
        p += nb
        v = np.zeros(d)
        v[j] = 1
        v[j + 1 :] = (codes.astype(np.float32) * f16_to_f32(np.array([sc], dtype=np.uint16))[0]).astype(np.float64)
        vs.append(v)
    q = np.eye(k, d)  # row c: column c of the product
    for j in range(k - 1, -1, -1):
        v = vs[j]
        tau = 2 / float(v[j:] @ v[j:])
        q[j:, j:] -= tau * np.outer(q[j:, j:] @ v[j:], v[j:])
    return q.astype(np.float32)


def _plain_from(mver: int) -> int:
    """The first bucket a model of version mver codes plainly (ansPlainFrom)."""
    return ANS_PLAIN8 if mver >= 8 else ANS_PLAIN


def _table_bytes(mver: int, lo: int, hi: int) -> int:
    """The size of a model's frequency tables of buckets [lo, hi) (tableBytes)."""
    if mver == 4:
        return (hi - lo) * RANS_SYMS * 2
    pb = _plain_from(mver)
    return sum((ANS_SYMS * 2 if b >= pb else 2 * ANS_SYM_TAB * 2) + 6 for b in range(lo, hi))


def _alias_entries(freq: list[int]) -> tuple[list[int], list[int]]:
    """The decoder's alias table of a 32-symbol frequency table (aliasEntries
    in ans.go, whose construction the format fixes): entry i covers the slots
    [128i, 128i+128); the first div belong to symbol i, the rest to its alias
    a. p[i] = freq[i] | (div-1)<<12 | i<<24, a[i] = freq[a] | ((offA-div) mod
    4096)<<12 | a<<24, offA the rank of the entry's first alias slot among a's
    slots (a symbol's own part first, then its alias parts by entry)."""
    n, w = ANS_SYMS, ANS_WIDTH
    res = list(freq)
    div = [w] * n
    alias = list(range(n))
    small = [s for s in range(n) if res[s] < w]
    large = [s for s in range(n) if res[s] > w]
    while small and large:
        s, l = small.pop(0), large[0]
        div[s], alias[s] = res[s], l
        res[l] -= w - res[s]
        if res[l] < w:
            large.pop(0)
            small.append(l)
        elif res[l] == w:
            large.pop(0)
    nxt = list(div)
    p, a = [], []
    for i in range(n):
        al = alias[i]
        off = 0
        if div[i] < w:
            off = nxt[al]
            nxt[al] += w - div[i]
        p.append(freq[i] | (div[i] - 1) << 12 | i << 24)
        a.append(freq[al] | ((off - div[i]) & (ANS_M - 1)) << 12 | al << 24)
    return p, a


def _uvarint(b: bytes, p: int, most: int, bad, what: str) -> tuple[int, int]:
    """Reads an unsigned LEB128 varint of at most `most` at b[p:] (Go's
    binary.Uvarint): (value, position after it)."""
    v, shift = 0, 0
    while True:
        if p >= len(b) or shift > 63:
            raise bad(what)
        c = b[p]
        p += 1
        v |= (c & 0x7F) << shift
        shift += 7
        if c < 0x80:
            break
    if v > most:
        raise bad(what)
    return v, p


def _rows(raw: bytes, count: int, dim: int, what: str) -> np.ndarray:
    """int8 rows with a float16 scale each ([count, 2+dim] bytes) as float32
    [count, dim], their scales checked."""
    rows = np.frombuffer(raw, dtype=np.uint8, count=count * (2 + dim)).reshape(count, 2 + dim)
    sc = rows[:, 0].astype(np.uint16) | (rows[:, 1].astype(np.uint16) << 8)
    bad = ((sc & 0x7C00) == 0x7C00) | ((sc & 0x8000) != 0)
    if bad.any():
        raise CorruptError(f"ntc {what} scale {int(sc[np.argmax(bad)]):#06x}")
    return rows[:, 2:].view(np.int8).astype(np.float32) * f16_to_f32(sc)[:, None]


class NTC(Codec):
    name = "ntc"
    id = 5

    def __init__(self, layout: Layout, model: bytes | None):
        self.layout = layout
        layout.validate()
        m = bytes(model or b"")
        if len(m) < MODEL_HEADER:
            raise CorruptError(f"ntc model of {len(m)} bytes")
        flags = FLAG_CLASS_STEPS | FLAG_HOUSEHOLDER if m[0] >= 9 else FLAG_CLASS_STEPS if m[0] == 8 else 0
        if m[0] not in MODEL_VERSIONS or m[1] & ~flags:
            raise CorruptError(
                f"ntc model version {m[0]} flags {m[1]} (this reader reads versions "
                f"{', '.join(map(str, MODEL_VERSIONS))})"
            )
        self.mver = m[0]
        self.pb = _plain_from(self.mver)  # the first bucket coded plainly
        # Class step codes: always in model version 7, with the flag in 8.
        self.has_csc = self.mver == 7 or (self.mver >= 8 and m[1] & FLAG_CLASS_STEPS != 0)
        # Model version 9 may store the basis as Householder vectors (_householder).
        self.hh = m[1] & FLAG_HOUSEHOLDER != 0
        d, k = struct.unpack_from("<HH", m, 2)
        (h16,) = struct.unpack_from("<H", m, 16)
        if d != layout.dim or k > d or h16 > k:
            raise CorruptError(f"ntc model for dim {d} with {k} components, layout dim {layout.dim}")
        if self.hh and h16:
            raise CorruptError(f"ntc model with a Householder basis and {h16} float16 rows")
        # Model version 6 stores a mean per prefix token position (P x D float16).
        pm = layout.prefix * d if self.mver >= 6 else 0
        widths = b""
        if self.hh:
            at = MODEL_HEADER + 2 * d + 2 * pm  # the vectors' code widths come first
            if len(m) < at + k:
                raise CorruptError(f"ntc model has {len(m)} bytes, want at least {at + k}")
            widths = m[at : at + k]
            for j, w in enumerate(widths):
                if not 2 <= w <= 8:
                    raise CorruptError(f"ntc Householder vector {j} has {w}-bit codes (model byte {at + j})")
        fixed = self._model_size(d, k, h16, 0, pm, widths)
        # (the tables' size depends on their bucket range, read below)
        if len(m) < fixed:
            raise CorruptError(f"ntc model has {len(m)} bytes, want at least {fixed}")
        tlo, thi = m[fixed - 2], m[fixed - 1]
        if tlo > thi or thi > BUCKETS:
            raise CorruptError(f"ntc rANS tables {tlo}..{thi}")
        # Model version 7 (8 with the flag) ends with K*32 class step codes.
        want = self._model_size(d, k, h16, _table_bytes(self.mver, tlo, thi), pm, widths) + (CLASSES * k if self.has_csc else 0)
        if len(m) != want:
            raise CorruptError(f"ntc model has {len(m)} bytes, want {want}")
        (step_code,) = struct.unpack_from("<i", m, 6)
        qkind = m[10]
        (qtarget,) = struct.unpack_from("<f", m, 11)
        (othr,) = struct.unpack_from("<f", m, 18)
        if not 0 <= othr <= 3.4028234663852886e38:
            raise CorruptError(f"ntc outlier threshold {othr}")
        if not -STEP_CODE_MAX <= step_code <= STEP_CODE_MAX:
            raise CorruptError(f"ntc step code {step_code}")
        if qkind > QUALITY_COS or not (-1000 <= qtarget <= 1000):
            raise CorruptError(f"ntc quality target {qkind} {qtarget}")
        p = MODEL_HEADER
        # The mean, the prefix means (model version 6) and the float16 basis rows.
        h = np.frombuffer(m, dtype="<u2", count=d + pm + d * h16, offset=p)
        if ((h & 0x7C00) == 0x7C00).any():
            raise CorruptError("ntc model: a mean, prefix mean or basis value is not finite")
        self.mean = f16_to_f32(h[:d])
        # pmean[p]: prefix token p's mean, added to its decoded row (None before model version 6).
        self.pmean = f16_to_f32(h[d : d + pm]).reshape(layout.prefix, d) if pm else None
        hi = f16_to_f32(h[d + pm :]).reshape(h16, d)
        p += 2 * (d + pm + d * h16)
        if self.hh:
            self.basis = _householder(m, p, k, d)
            p += _hh_bytes(d, widths)
        else:
            self.basis, p = self._int8_rows(m, p, k, h16, d, hi)
        self.sig = list(m[p : p + CLASSES * k])
        p += CLASSES * k + 2
        self._read_tables(m, p, d, k, tlo, thi, step_code)

    @staticmethod
    def _int8_rows(m: bytes, p: int, k: int, h16: int, d: int, hi: np.ndarray) -> tuple[np.ndarray, int]:
        """The basis stored as rows: the float16 rows hi, then K-H int8 rows
        with a float16 scale each, from byte p; the basis and the next byte."""
        rows = np.frombuffer(m, dtype=np.uint8, count=(k - h16) * (2 + d), offset=p).reshape(k - h16, 2 + d)
        sc = rows[:, 0].astype(np.uint16) | (rows[:, 1].astype(np.uint16) << 8)
        if (((sc & 0x7C00) == 0x7C00) | ((sc & 0x8000) != 0)).any():
            raise CorruptError("ntc model: a basis scale is negative or not finite")
        lo = rows[:, 2:].view(np.int8).astype(np.float32) * f16_to_f32(sc)[:, None]
        return np.concatenate([hi, lo]).astype(np.float32), p + (k - h16) * (2 + d)  # [K, D]

    def _read_tables(self, m: bytes, p: int, d: int, k: int, tlo: int, thi: int, step_code: int) -> None:
        """Reads the model from its tables (byte p) on and derives the
        decoder's tables."""
        self.dim, self.k = d, k
        self.step_code = step_code
        if self.mver == 4:
            freqs = [[RANS_M // RANS_SYMS] * RANS_SYMS for _ in range(BUCKETS)]
            for i in range(tlo, thi):
                f = list(struct.unpack_from(f"<{RANS_SYMS}H", m, p))
                p += 2 * RANS_SYMS
                if min(f) == 0 or sum(f) != RANS_M:
                    raise CorruptError(f"ntc rANS table {i}")
                freqs[i] = f
            # Decoding tables: for bucket b and slot s, index b*2048+s.
            self._freq, self._bias, self._sym = [], [], []
            for b in range(BUCKETS):
                for s, f in enumerate(freqs[b]):
                    self._freq.extend([f] * f)
                    self._bias.extend(range(f))
                    self._sym.extend([s] * f)
        else:
            # Model versions 5 and 6: a table per bucket and quantizer, read
            # through the alias method (aliasEntries): P and A by table
            # index (bucket*2+q)*32 + alias entry.
            tabs = [[[ANS_M // ANS_SYMS] * ANS_SYMS for _ in range(2)] for _ in range(BUCKETS)]
            for i in range(tlo, thi):
                for q in range(2):
                    if i >= self.pb and q == 1:
                        continue  # quantizer 0's table only
                    if i >= self.pb:
                        f = list(struct.unpack_from(f"<{ANS_SYMS}H", m, p))
                        p += 2 * ANS_SYMS
                    else:
                        g = list(struct.unpack_from(f"<{ANS_SYM_TAB}H", m, p))
                        p += 2 * ANS_SYM_TAB
                        f = g[:ANS_ESC] + [g[ANS_ESC]] + g[1:ANS_ESC]
                    if min(f) == 0 or sum(f) != ANS_M:
                        raise CorruptError(f"ntc frequency table {i}/{q}")
                    tabs[i][q] = f
            # Centroid offsets of buckets [tlo, thi): quantizer, magnitudes
            # 1, 2, >= 3, in 1/128 of a step.
            self.cent = np.zeros((BUCKETS, 2, 3), dtype=np.int8)
            self.cent[tlo:thi] = np.frombuffer(m, dtype=np.int8, count=6 * (thi - tlo), offset=p).reshape(-1, 2, 3)
            p += 6 * (thi - tlo)
            # Model version 7: a step multiplier 2^(code/8) per component and
            # class (int8 codes, component-major), applied to the dequantized
            # coefficients.
            self.csc = None
            if self.has_csc:
                csc = np.frombuffer(m, dtype=np.int8, count=CLASSES * k, offset=p).reshape(k, CLASSES)
                p += CLASSES * k
                if (np.abs(csc.astype(np.int16)) > CLASS_STEP_MAX).any() or csc[:, 0].any():
                    raise CorruptError("ntc model: a class step code is out of range")
                self.csc = csc
            self._P, self._A = [], []
            for b in range(BUCKETS):
                for q in range(2):
                    pp, aa = _alias_entries(tabs[b][q])
                    self._P.extend(pp)
                    self._A.extend(aa)
        self.blocks = self._grid_blocks()
        self._plans: dict[int, tuple] = {}
        self._cmul = None
        if getattr(self, "csc", None) is not None:
            # _cmul[b, u, k]: the multiplier of frequency u of block b (its
            # class: u for AC, 16 + the block's position in its group for DC).
            mul = np.exp2(self.csc.astype(np.float64) / 8).astype(np.float32)  # [K, CLASSES]
            cls = np.array([[u if u else BLOCK_SIZE + gpos for u in range(BLOCK_SIZE)] for _, _, _, gpos in self.blocks])
            self._cmul = np.ascontiguousarray(np.transpose(mul[:, cls], (1, 2, 0))) if len(self.blocks) else None

    @staticmethod
    def _model_size(d: int, k: int, h16: int, nt: int, pm: int = 0, widths: bytes = b"") -> int:
        """The size of a model whose frequency tables take nt bytes, with pm
        prefix mean values (Prefix x D in model version 6, 0 before), its
        basis as Householder vectors of those code widths if given
        (modelSize)."""
        basis = _hh_bytes(d, widths) if widths else h16 * 2 * d + (k - h16) * (2 + d)
        return MODEL_HEADER + 2 * d + 2 * pm + basis + CLASSES * k + 2 + nt

    def _grid_blocks(self):
        """Blocks in coding order, (bh, bw, token index [bh, bw], position in
        its group), and the groups of up to 4x4 blocks, (gh, gw, block index
        [gh, gw])."""
        l = self.layout
        nby, nbx = -(-l.grid_h // BLOCK_SIDE), -(-l.grid_w // BLOCK_SIDE)
        blocks = []
        for by in range(nby):
            for bx in range(nbx):
                bh = min(BLOCK_SIDE, l.grid_h - by * BLOCK_SIDE)
                bw = min(BLOCK_SIDE, l.grid_w - bx * BLOCK_SIDE)
                tok = np.array([[l.prefix + (by * BLOCK_SIDE + py) * l.grid_w + bx * BLOCK_SIDE + px
                                 for px in range(bw)] for py in range(bh)])
                blocks.append((bh, bw, tok, (by % BLOCK_SIDE) * BLOCK_SIDE + bx % BLOCK_SIDE))
        groups = []
        for gy in range(0, nby, BLOCK_SIDE):
            for gx in range(0, nbx, BLOCK_SIDE):
                gh, gw = min(BLOCK_SIDE, nby - gy), min(BLOCK_SIDE, nbx - gx)
                groups.append((gh, gw, np.array([[(gy + i) * nbx + gx + j for j in range(gw)] for i in range(gh)])))
        self.groups = groups
        return blocks

    def _plan(self, step_code: int):
        """The coded classes for a step code: (u, k, bucket, shift) lists, and
        per block shape and group position the plan indices present."""
        got = self._plans.get(step_code)
        if got is not None:
            return got
        us, ks, bs, sh, cls = [], [], [], [], []
        # DC classes first (group frequencies in zigzag order), then the AC
        # frequencies of a block.
        for cl in [BLOCK_SIZE + u for u in CLASS_ORDER] + CLASS_ORDER[1:]:
            u = cl if cl < BLOCK_SIZE else 0
            for k in range(self.k):
                lg = (self.sig[k * CLASSES + cl] - 128) * 32 - step_code
                if lg < SKIP:
                    continue
                b = min((lg - BASE) >> BUCKET_SHIFT, BUCKETS - 1)
                us.append(u)
                ks.append(k)
                bs.append(b)
                # The raw low bits of the magnitude: lowBits (model version
                # 4), ansLowBits (5 and 6: plain buckets only).
                if self.mver == 4:
                    sh.append(max(0, (b >> 2) - 3))
                else:
                    sh.append((b >> 2) - 4 if b >= self.pb else 0)
                cls.append(cl)
        shapes = {}
        for bh, bw, _, gpos in self.blocks:
            if (bh, bw, gpos) not in shapes:
                shapes[(bh, bw, gpos)] = [
                    i for i, (u, cl) in enumerate(zip(us, cls))
                    if (cl >= BLOCK_SIZE and cl - BLOCK_SIZE == gpos)
                    or (cl < BLOCK_SIZE and u // BLOCK_SIDE < bh and u % BLOCK_SIDE < bw)
                ]
        got = (us, ks, bs, sh, shapes)
        if len(self._plans) > 64:
            self._plans.clear()
        self._plans[step_code] = got
        return got

    # -- entropy decoding ---------------------------------------------------

    def decode_coefficients(self, payload: bytes, n: int) -> dict:
        """Entropy-decodes a chunk: the prefix tokens [n, P, D] and the DCT
        coefficients of every block [n, blocks, 16, K] (float32)."""
        l = self.layout
        l.check_count(n)
        payload = bytes(payload)
        D, P = l.dim, l.prefix
        if len(payload) < 2 or payload[0] not in PAYLOAD_VERSIONS or payload[1] != 0:
            v, f = (payload[0], payload[1]) if len(payload) >= 2 else (None, None)
            raise CorruptError(
                f"ntc payload version {v} flags {f} (this reader reads versions "
                f"{', '.join(map(str, PAYLOAD_VERSIONS))})"
            )
        nb = len(self.blocks)
        coded = nb > 0 and self.k > 0
        if payload[0] == 6:
            ch = self._parse_v6(payload, n, coded)
        else:
            ch = self._parse_v5(payload, n, coded)
        step_code = ch["step_code"]
        step = np.float32(2.0 ** (step_code / 256))
        prefix = _rows(ch["prefix"], n * P, D, "prefix").reshape(n, P, D)
        if self.pmean is not None:
            # Model version 6: a prefix row codes the token minus its
            # position's mean (unpackPrefix); outlier rows have no mean.
            prefix += self.pmean
        outliers = (np.asarray(ch["out_idx"], dtype=np.int64), _rows(ch["out_rows"], len(ch["out_idx"]), D, "outlier"))
        coef = np.zeros((n, nb, BLOCK_SIZE, self.k), dtype=np.float32)
        if not coded:
            return {"prefix": prefix, "coef": coef, "outliers": outliers}
        us, ks, bs, sh, shapes = self._plan(step_code)
        plan = (us, ks, bs, sh, [shapes[(bh, bw, gpos)] for bh, bw, _, gpos in self.blocks])
        # Decoded symbols: flat index into coef, signed magnitude (version 6:
        # signed level), bucket, quantizer.
        at, mags, bks, qzs = [], [], [], []
        for si, (rans, bits, start, stop) in enumerate(ch["slices"]):
            try:
                if payload[0] == 6:
                    self._slice_symbols6(plan, rans, bits, start, stop, ch["lanes"], at, mags, bks, qzs)
                else:
                    self._slice_symbols(plan, rans, bits, start, stop, at, mags, bks)
            except CorruptError as e:
                raise CorruptError(f"slice {si}: {e.detail}") from None
        if not at:
            return {"prefix": prefix, "coef": coef, "outliers": outliers}
        v = np.asarray(mags, dtype=np.int64)
        a = np.abs(v)
        b = np.asarray(bks)
        if payload[0] == 6:
            # The level 2m-q (m for a plain bucket), corrected by the
            # centroid of (bucket, q, min(m, 3)) (ansRecon).
            q = np.asarray(qzs)
            mm = np.where(b >= self.pb, a, (a + q) >> 1)
            corr = -ch["offsets"][b, q, np.minimum(mm, 3) - 1].astype(np.float32) / np.float32(128)
        else:
            corr = -ch["offsets"][b, np.minimum(a, 3) - 1].astype(np.float32) / np.float32(256)
        r = (a.astype(np.float32) + corr).astype(np.float32) * step
        coef.reshape(-1)[np.asarray(at)] = np.where(v < 0, -r, r)
        if self._cmul is not None:
            coef *= self._cmul
        return {"prefix": prefix, "coef": coef, "outliers": outliers}

    @staticmethod
    def _step_code(payload: bytes) -> int:
        (step_code,) = struct.unpack_from("<i", payload, 2)
        if not -STEP_CODE_MAX <= step_code <= STEP_CODE_MAX:
            raise CorruptError(f"ntc step code {step_code}")
        return step_code

    def _parse_v5(self, payload: bytes, n: int, coded: bool) -> dict:
        """Parses a payload of version 5 or 4, its sections one after the
        other (parseV5): step code, centroid offsets, prefix rows, outlier
        token indices and rows, and the slices (rans, bits, first block, end
        block)."""
        l = self.layout
        D, P = l.dim, l.prefix
        prefix_bytes = n * P * (2 + D)
        if len(payload) < PAYLOAD_HEADER_V5 + prefix_bytes + 4 + 8:
            raise CorruptError(f"ntc payload of {len(payload)} bytes for {n} samples")
        ch = {"step_code": self._step_code(payload),
              "offsets": np.frombuffer(payload, dtype=np.int8, count=BUCKETS * 3, offset=6).reshape(BUCKETS, 3)}
        p = PAYLOAD_HEADER_V5
        ch["prefix"] = payload[p : p + prefix_bytes]
        p += prefix_bytes
        # Outlier grid tokens, coded like prefix tokens: written over the grid last.
        (nout,) = struct.unpack_from("<I", payload, p)
        p += 4
        if nout > n * (l.tokens - P) or nout * (6 + D) > len(payload) - p:
            raise CorruptError(f"ntc payload claims {nout} outlier tokens")
        out_idx = struct.unpack_from(f"<{nout}I", payload, p)
        prev = -1
        for t in out_idx:
            if t <= prev or t >= n * l.tokens or t % l.tokens < P:
                raise CorruptError(f"ntc outlier token index {t}")
            prev = t
        ch["out_idx"] = list(out_idx)
        ch["out_rows"] = payload[p + 4 * nout : p + nout * (6 + D)]
        p += nout * (6 + D)
        if payload[0] == 4:
            ch["slices"] = self._parse_v4(payload, p, n, coded)
        else:
            ch["slices"] = self._parse_slices(payload, p, n, coded)
        return ch

    def _parse_v4(self, payload: bytes, p: int, n: int, coded: bool):
        """Locates the single coefficient stream of a version 4 payload, whose
        rest starts at p: [(rans, bits, 0, blocks)] (parseV4)."""
        if len(payload) - p < 4:
            raise CorruptError(f"ntc payload too short for {n} samples")
        (rlen,) = struct.unpack_from("<I", payload, p)
        p += 4
        left = len(payload) - p
        if rlen < 8 or rlen > left:
            raise CorruptError(f"ntc rANS stream of {rlen} bytes, {left} left")
        if not coded:
            if rlen != 8 or rlen != left:
                raise CorruptError(f"ntc payload has {left - 8} bytes of coefficients, want none")
            return []
        return [(payload[p : p + rlen], payload[p + rlen :], 0, n * len(self.blocks))]

    def _parse_slices(self, payload: bytes, p: int, n: int, coded: bool):
        """Locates the slices of a version 5 payload, whose slice table starts
        at p: [(rans, bits, first block, end block)] (parseV5)."""
        if len(payload) - p < 8:
            raise CorruptError(f"ntc payload of {len(payload)} bytes for {n} samples")
        per_slice, ns = struct.unpack_from("<II", payload, p)
        p += 8
        nb = n * len(self.blocks)
        want = 0
        if coded:
            if per_slice < 1:
                raise CorruptError(f"ntc slices of {per_slice} blocks")
            want = -(-nb // per_slice)
        if ns != want or 8 * ns > len(payload) - p:
            raise CorruptError(f"ntc payload has {ns} slices, want {want}")
        table = struct.unpack_from(f"<{2 * ns}I", payload, p)
        p += 8 * ns
        slices = []
        for i in range(ns):
            rl, bl = table[2 * i], table[2 * i + 1]
            if rl < 8 or rl + bl > len(payload) - p:
                raise CorruptError(f"ntc slice {i} of {rl}+{bl} bytes, {len(payload) - p} left")
            slices.append((payload[p : p + rl], payload[p + rl : p + rl + bl], i * per_slice, min(nb, (i + 1) * per_slice)))
            p += rl + bl
        if p != len(payload):
            raise CorruptError(f"ntc payload has {len(payload) - p} bytes after its slices")
        return slices

    def _parse_v6(self, payload: bytes, n: int, coded: bool) -> dict:
        """Parses a sample-major payload (version 6, parseV6): the head (step
        code, slices per sample, lanes per slice), then one part per sample:
        its prefix rows, outlier tokens (a count and index gaps as uvarints,
        then the rows), its slices' lengths (uvarints) and streams."""
        l = self.layout
        D, P = l.dim, l.prefix
        row = 2 + D
        nb = len(self.blocks)
        if self.mver < 5:  # model versions 5 and 6 have the alias tables
            raise CorruptError(f"ntc payload version 6 with a model of version {self.mver}")
        if len(payload) < HEAD_V6:
            raise CorruptError(f"ntc payload of {len(payload)} bytes")
        (spp,) = struct.unpack_from("<H", payload, 6)
        if (coded and not 1 <= spp <= nb) or (not coded and spp != 0):
            raise CorruptError(f"ntc payload has {spp} slices per sample of {nb} blocks")
        lanes = payload[8]
        if lanes not in ANS_LANES:
            raise CorruptError(f"ntc payload has slices of {lanes} lanes")
        head = HEAD_V6
        if n * (P * row + 1 + 2 * spp) > len(payload) - head:
            raise CorruptError(f"ntc payload of {len(payload)} bytes for {n} samples")
        ch = {"step_code": self._step_code(payload), "offsets": self.cent, "lanes": lanes}
        prefix, out_idx, out_rows, slices = [], [], [], []
        p = head
        grid = l.tokens - P
        for s in range(n):
            def bad(what):
                return CorruptError(f"ntc sample {s}: {what}")
            if len(payload) - p < P * row:
                raise bad("part truncated in its prefix tokens")
            prefix.append(payload[p : p + P * row])
            p += P * row
            m, p = _uvarint(payload, p, grid, bad, "outlier count")
            t = P - 1
            for _ in range(m):
                gap, p = _uvarint(payload, p, grid, bad, "outlier token index")
                t += 1 + gap
                if t >= l.tokens:
                    raise bad("outlier token index out of range")
                out_idx.append(s * l.tokens + t)
            if len(payload) - p < m * row:
                raise bad("part truncated in its outlier tokens")
            out_rows.append(payload[p : p + m * row])
            p += m * row
            lens = []
            for _ in range(2 * spp):
                v, p = _uvarint(payload, p, len(payload), bad, "slice length")
                lens.append(v)
            if sum(lens) > len(payload) - p:
                raise bad(f"slices of {sum(lens)} bytes, {len(payload) - p} left")
            for j in range(spp):
                rl, bl = lens[2 * j], lens[2 * j + 1]
                if rl < 4 * lanes:
                    raise bad(f"slice {j}: rANS stream of {rl} bytes")
                slices.append((payload[p : p + rl], payload[p + rl : p + rl + bl],
                               s * nb + j * nb // spp, s * nb + (j + 1) * nb // spp))
                p += rl + bl
        if p != len(payload):
            raise CorruptError(f"ntc payload has {len(payload) - p} bytes after its {n} samples")
        ch.update(prefix=b"".join(prefix), out_idx=out_idx, out_rows=b"".join(out_rows), slices=slices)
        return ch

    def _slice_symbols6(self, plan, rans: bytes, bits: bytes, start: int, stop: int, lanes: int, at: list,
                        levs: list, bks: list, qzs: list) -> None:
        """Decodes one slice of a version 6 payload (sliceSymbols6, ans.go):
        its lanes take the symbols in turn, each lane with its rANS state and
        trellis state, then each block's raw bits (escapes; plain buckets' low
        bits and signs). Appends every nonzero symbol's flat index into the
        coefficients, its signed level, bucket and quantizer."""
        us, ks, bs, sh, blk_idx = plan
        end, bend = len(rans), len(bits)
        if end < 4 * lanes:
            raise CorruptError("ntc rANS stream too short")
        x = list(struct.unpack_from(f"<{lanes}I", rans, 0))
        if min(x) < RANS_L:
            raise CorruptError("ntc rANS state")
        ts = [0] * lanes
        rans = rans + bytes(RANS_PAD)
        pos, bp, j = 4 * lanes, 0, 0
        P, A = self._P, self._A
        K, pb = self.k, self.pb
        nb = len(self.blocks)
        bitint = int.from_bytes(bits, "little")

        def take(n):
            nonlocal bp
            v = (bitint >> bp) & ((1 << n) - 1)
            bp += n
            if bp > 8 * bend:
                raise CorruptError("ntc coefficient stream truncated")
            return v

        def golomb():
            nz = 0
            while take(1) == 0:
                nz += 1
                if nz > 24:
                    raise CorruptError("ntc coefficient escape too long")
            return ((1 << nz) | take(nz)) - 1

        for gb in range(start, stop):
            base = gb * BLOCK_SIZE * K
            idx = blk_idx[gb % nb]
            syms = []
            for i in idx:
                if pos > end:
                    raise CorruptError("ntc coefficient stream truncated")
                b = bs[i]
                l = j % lanes
                j += 1
                qz = 0 if b >= pb else ts[l] >> 1
                st = x[l]
                slot = st & (ANS_M - 1)
                e = (b * 2 + qz) * ANS_SYMS + slot // ANS_WIDTH
                lo = slot % ANS_WIDTH
                part, rank = P[e], lo
                if lo > (part >> 12) & (ANS_WIDTH - 1):
                    part = A[e]
                    rank = (lo + (part >> 12)) & (ANS_M - 1)
                st = (part & (ANS_M - 1)) * (st >> ANS_BITS) + rank
                if st < RANS_L:
                    st = (st << 16) | rans[pos] | (rans[pos + 1] << 8)
                    pos += 2
                x[l] = st
                s = (part >> 24) & 31
                if b < pb:
                    ts[l] = (ANS_TRANS >> (4 * ts[l] + 2 * (s & 1))) & 3
                syms.append((s, qz))
            for i, (s, qz) in zip(idx, syms):
                b = bs[i]
                neg = 0
                if b >= pb:
                    t = s + (golomb() if s == ANS_ESC_PLAIN else 0)
                    r = sh[i]
                    m = (t << r) | take(r)
                    if t or r:
                        neg = take(1)
                    lev = m
                elif s == ANS_ESC:
                    m = ANS_ESC + golomb()
                    neg = take(1)
                    lev = 2 * m - qz
                else:
                    m, neg = s & 15, s >> 4
                    lev = 2 * m - qz
                if m == 0:
                    continue
                at.append(base + us[i] * K + ks[i])
                levs.append(-lev if neg else lev)
                bks.append(b)
                qzs.append(qz)
        if x != [RANS_L] * lanes or pos != end or (bp + 7) // 8 != bend:
            raise CorruptError("ntc coefficient streams do not end where they should")

    def _slice_symbols(self, plan, rans: bytes, bits: bytes, start: int, stop: int, at: list, mags: list,
                       bks: list) -> None:
        """Decodes one slice, the blocks [start, stop) of the chunk in coding
        order (sample by sample, the blocks of a sample in order), with a
        fresh decoder (sliceSymbols). plan is _plan's lists with, per block,
        the plan indices it codes. Appends every nonzero symbol's flat index
        into the coefficients [n, blocks, 16, K], its signed magnitude and its
        bucket to at, mags and bks."""
        us, ks, bs, sh, blk_idx = plan
        end = len(rans)
        bend = len(bits)
        rans = rans + bytes(RANS_PAD)
        bits = bits + bytes(RANS_PAD + 8)
        x = [struct.unpack_from("<I", rans, 0)[0], struct.unpack_from("<I", rans, 4)[0]]
        if x[0] < RANS_L or x[1] < RANS_L:
            raise CorruptError("ntc rANS state")
        pos, acc, nacc, bpos, par = 8, 0, 0, 0, 0
        F, B, S = self._freq, self._bias, self._sym
        K = self.k
        nb = len(self.blocks)
        for gb in range(start, stop):
            base = gb * BLOCK_SIZE * K
            for i in blk_idx[gb % nb]:
                if pos > end or bpos > bend + 8:
                    raise CorruptError("ntc coefficient stream truncated")
                b = bs[i]
                st = x[par]
                j = (b << RANS_BITS) | (st & (RANS_M - 1))
                st = F[j] * (st >> RANS_BITS) + B[j]
                if st < RANS_L:
                    st = (st << 16) | rans[pos] | (rans[pos + 1] << 8)
                    pos += 2
                x[par] = st
                par ^= 1
                if nacc < 32:
                    acc |= int.from_bytes(bits[bpos : bpos + 4], "little") << nacc
                    bpos += 4
                    nacc += 32
                t = S[j]
                if t == RANS_ESC:  # Exp-Golomb excess in the raw bits
                    nbits = 0
                    while True:
                        if nacc < 32:
                            acc |= int.from_bytes(bits[bpos : bpos + 4], "little") << nacc
                            bpos += 4
                            nacc += 32
                        one = acc & 1
                        acc >>= 1
                        nacc -= 1
                        if one:
                            break
                        nbits += 1
                        if nbits > 24:
                            raise CorruptError("ntc coefficient escape too long")
                    if nacc < 32:
                        acc |= int.from_bytes(bits[bpos : bpos + 4], "little") << nacc
                        bpos += 4
                        nacc += 32
                    v = acc & ((1 << nbits) - 1)
                    acc >>= nbits
                    nacc -= nbits
                    t = (t + ((1 << nbits) | v) - 1) & 0xFFFFFFFF
                    if nacc < 32:
                        acc |= int.from_bytes(bits[bpos : bpos + 4], "little") << nacc
                        bpos += 4
                        nacc += 32
                r = sh[i]  # low bits of the magnitude, raw
                mag = ((t << r) | (acc & ((1 << r) - 1))) & 0xFFFFFFFF
                acc >>= r
                nacc -= r
                if mag == 0:
                    continue
                nz = ((-mag) & 0xFFFFFFFF) >> 31  # as Go's uint32: 1 for 0 < mag < 2^31
                neg = acc & nz
                acc >>= nz
                nacc -= nz
                at.append(base + us[i] * K + ks[i])
                mags.append(-mag if neg else mag)
                bks.append(b)
        used = bpos * 8 - nacc
        if x[0] != RANS_L or x[1] != RANS_L or pos != end or (used + 7) // 8 != bend:
            raise CorruptError("ntc coefficient streams do not end where they should")

    # -- inverse transform --------------------------------------------------

    def _shape_groups(self):
        """Blocks grouped by shape: (bh, bw, block indices, token indices [g, bh, bw])."""
        groups = {}
        for bi, (bh, bw, tok, _) in enumerate(self.blocks):
            groups.setdefault((bh, bw), ([], []))
            groups[(bh, bw)][0].append(bi)
            groups[(bh, bw)][1].append(tok)
        return [(bh, bw, np.array(bis), np.stack(toks)) for (bh, bw), (bis, toks) in groups.items()]

    def _dc_groups(self):
        """Groups of blocks by shape: (gh, gw, block indices [g, gh, gw])."""
        out = {}
        for gh, gw, blk in self.groups:
            out.setdefault((gh, gw), []).append(blk)
        return [(gh, gw, np.stack(b)) for (gh, gw), b in out.items()]

    def reconstruct(self, dec: dict) -> np.ndarray:
        """Tokens [n, T, D] from decode_coefficients' output (numpy, float32)."""
        l = self.layout
        prefix, coef = dec["prefix"], dec["coef"]
        n = prefix.shape[0]
        out = np.empty((n, l.tokens, l.dim), dtype=np.float32)
        out[:, : l.prefix] = prefix
        out[:, l.prefix :] = self.mean
        if coef.shape[1] and self.k:
            self._inverse_np(coef, out)
        oi, ov = dec["outliers"]
        out.reshape(n * l.tokens, l.dim)[oi] = ov
        return out

    def _inverse_np(self, coef: np.ndarray, out: np.ndarray) -> None:
        l = self.layout
        n = out.shape[0]
        coef = coef.copy()
        # The DC slots hold the DCT of the DCs of each group of blocks.
        for gh, gw, blk in self._dc_groups():
            dc = coef[:, blk, 0, :]  # [n, g, gh, gw, K], by group frequency
            coef[:, blk, 0, :] = np.einsum("ia,jb,ngijk->ngabk", DCT[gh], DCT[gw], dc, optimize=True)
        c = coef.reshape(n, coef.shape[1], BLOCK_SIDE, BLOCK_SIDE, self.k)
        for bh, bw, bis, tok in self._shape_groups():
            cy, cx = DCT[bh], DCT[bw]
            y = np.einsum("fp,gq,nbfgk->nbpqk", cy, cx, c[:, bis, :bh, :bw], optimize=True)
            out[:, tok.reshape(-1)] = (
                y.reshape(n, -1, self.k) @ self.basis + self.mean
            ).reshape(n, len(bis) * bh * bw, l.dim).astype(np.float32)

    def reconstruct_torch(self, dec: dict, device):
        """Tokens [n, T, D] as a float32 torch tensor, the inverse transform run on device."""
        import torch

        l = self.layout
        prefix = torch.from_numpy(dec["prefix"]).to(device)
        coef = torch.from_numpy(dec["coef"]).to(device)
        n = prefix.shape[0]
        mean = torch.from_numpy(self.mean).to(device)
        basis = torch.from_numpy(self.basis).to(device)
        out = torch.empty((n, l.tokens, l.dim), dtype=torch.float32, device=device)
        out[:, : l.prefix] = prefix
        out[:, l.prefix :] = mean
        oi, ov = dec["outliers"]
        if coef.shape[1] == 0 or self.k == 0:
            out.view(n * l.tokens, l.dim)[torch.from_numpy(oi).to(device)] = torch.from_numpy(ov).to(device)
            return out
        coef = coef.clone()
        for gh, gw, blk in self._dc_groups():
            bt = torch.from_numpy(blk).to(device)
            dc = coef[:, bt, 0, :]
            cy = torch.from_numpy(DCT[gh]).to(device)
            cx = torch.from_numpy(DCT[gw]).to(device)
            coef[:, bt, 0, :] = torch.einsum("ia,jb,ngijk->ngabk", cy, cx, dc)
        c = coef.reshape(n, coef.shape[1], BLOCK_SIDE, BLOCK_SIDE, self.k)
        for bh, bw, bis, tok in self._shape_groups():
            cy = torch.from_numpy(DCT[bh]).to(device)
            cx = torch.from_numpy(DCT[bw]).to(device)
            sel = c[:, torch.from_numpy(bis).to(device), :bh, :bw]
            y = torch.einsum("fp,gq,nbfgk->nbpqk", cy, cx, sel)
            out[:, torch.from_numpy(tok.reshape(-1)).to(device)] = (y.reshape(n, -1, self.k) @ basis + mean).reshape(
                n, len(bis) * bh * bw, l.dim
            )
        out.view(n * l.tokens, l.dim)[torch.from_numpy(oi).to(device)] = torch.from_numpy(ov).to(device)
        return out

    def decode(self, payload: bytes, n: int) -> np.ndarray:
        return self.reconstruct(self.decode_coefficients(payload, n))
