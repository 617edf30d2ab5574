"""Damaged and hostile files: every problem is an ntcb.NtcbError naming the file."""

import hashlib
import os
import struct

import numpy as np
import pytest

import ntcb
from ntcb import _crc32c, _ntc, container

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
GOLDEN = os.path.join(ROOT, "testdata", "golden")


def golden_bytes(name):
    with open(os.path.join(GOLDEN, name + ".ntcb"), "rb") as f:
        return f.read()


def read_all(data):
    """Opens data, verifies every checksum and decodes every sample."""
    r = ntcb.Reader.from_bytes(data)
    r.verify()
    return r.read(range(len(r)))


def write(tmp_path, data, name="x.ntcb"):
    p = tmp_path / name
    p.write_bytes(data)
    return str(p)


@pytest.mark.parametrize("name", ["int4", "fp16"])
def test_every_byte_flip_detected(name):
    good = golden_bytes(name)
    read_all(good)
    bad = bytearray(good)
    for i in range(len(good)):
        for x in (0x01, 0x80, 0xFF):
            bad[i] ^= x
            try:
                with pytest.raises(ntcb.NtcbError):
                    read_all(bytes(bad))
            except BaseException:
                print(f"flipping byte {i} of {len(good)} with {x:#x} went unnoticed")
                raise
            bad[i] ^= x


@pytest.mark.parametrize("name", ["int8", "fp16"])
def test_every_truncation_detected(name):
    good = golden_bytes(name)
    for n in range(len(good)):
        with pytest.raises(ntcb.NtcbError):
            read_all(good[:n])


def test_appended_bytes_detected():
    good = golden_bytes("int8")
    with pytest.raises(ntcb.NtcbError):
        read_all(good + b"\0")


def test_errors_name_the_file(tmp_path):
    good = golden_bytes("fp16")
    bad = bytearray(good)
    bad[40] ^= 0xFF  # inside the first block
    p = write(tmp_path, bytes(bad))
    with pytest.raises(ntcb.NtcbError) as e:
        r = ntcb.open(p)
        r.verify()
    assert p in str(e.value) and e.value.path == p


def test_missing_file_names_the_path(tmp_path):
    p = str(tmp_path / "nope.ntcb")
    with pytest.raises(FileNotFoundError) as e:
        ntcb.open(p)
    assert p in str(e.value)


def test_bad_magic(tmp_path):
    p = write(tmp_path, b"PK\x03\x04" + b"\0" * 200)
    with pytest.raises(ntcb.BadMagic) as e:
        ntcb.open(p)
    assert p in str(e.value)
    with pytest.raises(ntcb.BadMagic):
        read_all(b"\x89NTX")  # short, and not a prefix of the magic
    with pytest.raises(ntcb.TruncatedError):
        read_all(b"\x89NTCB")  # a prefix of the magic: cut short
    # A text-mode transfer (CRLF -> LF) is caught by the magic.
    with pytest.raises(ntcb.BadMagic):
        read_all(golden_bytes("int8").replace(b"\r\n", b"\n"))


def test_unsupported_version():
    b = bytearray(golden_bytes("int8"))
    b[8] = 3
    with pytest.raises(ntcb.UnsupportedVersion):
        read_all(bytes(b))


def test_specific_errors():
    good = golden_bytes("int8")
    # a chunk payload byte: checksum
    c = ntcb.Reader.from_bytes(good)._c
    off = c.chunks[0].offset + 8
    b = bytearray(good)
    b[off] ^= 1
    with pytest.raises(ntcb.ChecksumError):
        read_all(bytes(b))
    # the footer magic: truncated (an incomplete write)
    b = bytearray(good)
    b[-1] ^= 1
    with pytest.raises(ntcb.TruncatedError):
        read_all(bytes(b))


def recrc_block(b, off):
    """Recomputes the CRC of the block at off (after a deliberate change)."""
    (n,) = struct.unpack_from("<I", b, off + 4)
    struct.pack_into("<I", b, off + 8 + n, _crc32c.crc32c(bytes(b[off : off + 8 + n])))


def recrc_chunk(b, c, ci):
    """Recomputes chunk ci's block CRC and, for a split chunk, the head and
    part CRCs its index entries hold (and then the index block's CRC)."""
    ch = c.chunks[ci]
    recrc_block(b, ch.offset)
    if not ch.split:
        return
    msize, csize, sfixed = container.ENTRY_SIZES[c.version]
    ip = c.index_offset + 8
    ce = ip + 32 + len(c.models) * msize + ci * csize
    struct.pack_into("<I", b, ce + 28, _crc32c.crc32c(bytes(b[ch.offset : ch.offset + 8 + ch.head])))
    pos = ip + 32 + len(c.models) * msize + len(c.chunks) * csize
    start = ch.offset + 8
    for s in c.samples:
        if s.chunk == ci:
            part = bytes(b[start + s.part_off : start + s.part_off + s.part_len])
            struct.pack_into("<I", b, pos + 20, _crc32c.crc32c(part))
        pos += sfixed + len(s.key.encode())
    recrc_block(b, c.index_offset)


def test_consistent_checksums_bad_contents():
    """Files whose CRCs match but whose contents are hostile."""
    good = golden_bytes("int8")
    r = ntcb.Reader.from_bytes(good)
    c = r._c
    io = c.index_offset
    ip = io + 8

    # Sample count raised in the index: chunks no longer add up.
    b = bytearray(good)
    struct.pack_into("<I", b, ip + 8, 4)
    recrc_block(b, io)
    with pytest.raises(ntcb.CorruptError):
        read_all(bytes(b))

    # A huge model count: refused before anything is allocated.
    b = bytearray(good)
    struct.pack_into("<I", b, ip, 0xFFFFFFFF)
    recrc_block(b, io)
    with pytest.raises(ntcb.TooLargeError):
        read_all(bytes(b))

    # A chunk offset beyond the file.
    b = bytearray(good)
    struct.pack_into("<Q", b, ip + 32, 1 << 40)
    recrc_block(b, io)
    with pytest.raises(ntcb.TruncatedError):
        read_all(bytes(b))

    # Two chunks swapped in the index: the tiling still holds but the
    # first-sample fields do not.
    b = bytearray(good)
    n = container.ENTRY_SIZES[c.version][1]
    e0 = bytes(b[ip + 32 : ip + 32 + n])
    e1 = bytes(b[ip + 32 + n : ip + 32 + 2 * n])
    b[ip + 32 : ip + 32 + n], b[ip + 32 + n : ip + 32 + 2 * n] = e1, e0
    recrc_block(b, io)
    with pytest.raises(ntcb.CorruptError):
        read_all(bytes(b))

    # An unknown codec id in both the index and the block header.
    b = bytearray(good)
    b[ip + 32 + 12] = 200
    b[c.chunks[0].offset + 1] = 200
    recrc_block(b, io)
    recrc_chunk(b, c, 0)
    with pytest.raises(ntcb.UnknownCodecError):
        read_all(bytes(b))

    # A negative int8 scale inside a chunk with a valid CRC.
    b = bytearray(good)
    b[c.chunks[0].offset + 8 + 2] |= 0x80  # high byte of the first scale
    recrc_chunk(b, c, 0)
    with pytest.raises(ntcb.CorruptError):
        read_all(bytes(b))

    # A payload of the wrong version.
    b = bytearray(good)
    b[c.chunks[0].offset + 8] = 9
    recrc_chunk(b, c, 0)
    with pytest.raises(ntcb.CorruptError):
        read_all(bytes(b))


def test_metadata_checked():
    good = golden_bytes("int8")
    c = ntcb.Reader.from_bytes(good)._c
    mo = c.meta_offset
    meta = bytes(c.metadata)
    for old, new in [(b'"tokens": 17', b'"tokens": 18'), (b'"format": "ntcb"', b'"format": "ntcm"'),
                     (b'"codec": "int8"', b'"codec": "zzz8"'), (b'"dim": 37', b'"dim": -1')]:
        assert old in meta
        m2 = meta.replace(old, new)
        assert len(m2) == len(meta)
        b = bytearray(good)
        b[mo + 8 : mo + 8 + len(meta)] = m2
        recrc_block(b, mo)
        with pytest.raises(ntcb.CorruptError):
            read_all(bytes(b))


def test_fp16_zstd_frame_checked():
    good = golden_bytes("fp16")
    c = ntcb.Reader.from_bytes(good)._c
    off = c.chunks[0].offset
    # Changing the frame's declared content size is refused before decoding.
    b = bytearray(good)
    p = off + 8 + 1 + 4  # the version byte, the first sample's frame length
    assert b[p : p + 4] == b"\x28\xb5\x2f\xfd"
    b[p + 4] ^= 0x20  # the frame header descriptor
    recrc_chunk(b, c, 0)
    with pytest.raises(ntcb.CorruptError):
        read_all(bytes(b))


def test_crc32c_implementations_agree():
    assert _crc32c.crc32c_numpy(b"123456789") == 0xE3069283
    assert _crc32c.crc32c(b"123456789") == 0xE3069283
    rng = np.random.default_rng(1)
    for n in [0, 1, 255, 256, 257, 1 << 14, (1 << 14) + 3, 300001]:
        d = rng.integers(0, 256, n, dtype=np.uint8).tobytes()
        ref = _crc32c._update_py(0xFFFFFFFF, d) ^ 0xFFFFFFFF
        assert _crc32c.crc32c_numpy(d) == ref, n
        assert _crc32c.crc32c(d) == ref, n


def test_container_constants_match_format_md():
    assert container.MIN_FILE_SIZE == 100
    assert container.MAGIC == b"\x89NTCB\r\n\x1a"


def test_go_container_fixture():
    """pkg/container's golden file (opaque payloads, models, keys) parses and verifies."""
    c = container.Container(os.path.join(ROOT, "testdata", "container", "golden_v1.ntcb"))
    c.verify()
    assert len(c.chunks) == 3 and len(c.samples) == 6 and [m.codec for m in c.models] == [7, 9]
    assert c.lookup(c.samples[4].key) == 4
    with pytest.raises(ntcb.NotFound):
        c.lookup("no such key")
    # It is not a token file: the metadata says so.
    with pytest.raises(ntcb.CorruptError):
        ntcb.open(os.path.join(ROOT, "testdata", "container", "golden_v1.ntcb"))


@pytest.mark.parametrize("name", ["ntc", "int4", "fp16", "fp8"])
def test_mutated_payloads_with_valid_crc(name):
    """Random changes inside a chunk payload, with the CRC fixed up: the
    codec either decodes or raises an NtcbError, never anything else."""
    path = os.path.join(GOLDEN, name + ".ntcb")
    if not os.path.exists(path) or name not in ntcb.codec_names():
        pytest.skip(f"no {name} golden file or port")
    good = golden_bytes(name)
    c = ntcb.Reader.from_bytes(good)._c
    rng = np.random.default_rng(7)
    errors = 0
    for trial in range(150):
        ch = c.chunks[trial % len(c.chunks)]
        b = bytearray(good)
        for _ in range(1 + trial % 3):
            at = ch.offset + 8 + int(rng.integers(0, ch.length))
            b[at] ^= int(rng.integers(1, 256))
        recrc_block(b, ch.offset)
        try:
            r = ntcb.Reader.from_bytes(bytes(b))
            r.read(range(len(r)))
        except ntcb.NtcbError:
            errors += 1
    assert errors > 0


NTC_V5 = os.path.join(GOLDEN, "compat", "ntc_payload_v5.ntcb")


def ntc_chunk(path, i=0):
    """Chunk i of an ntc file of payload version 4 or 5: (codec, payload,
    sample count, offset of the part after the outlier tokens: v5's slice
    table, v4's rANS length)."""
    r = ntcb.open(path)
    ch = r._c.chunks[i]
    dec = r._codec(ch.codec)
    payload = r._c.read_chunk(i)
    lay = r.layout
    p = _ntc.PAYLOAD_HEADER_V5 + ch.count * lay.prefix * (2 + lay.dim)
    (nout,) = struct.unpack_from("<I", payload, p)
    return dec, payload, ch.count, p + 4 + nout * (6 + lay.dim)


def test_ntc_slice_table_checked():
    """A payload v5 whose slice table does not match its slices is refused
    with CorruptError before any coefficient is decoded (or, where the
    lengths add up but split the streams wrongly, by the streams' end
    checks)."""
    path = NTC_V5
    if not os.path.exists(path) or "ntc" not in ntcb.codec_names():
        pytest.skip("no ntc golden file or port")
    dec, good, n, p = ntc_chunk(path)
    assert good[0] == 5
    per, ns = struct.unpack_from("<II", good, p)
    nb = n * len(dec.blocks)
    assert dec.k > 0 and per >= 1 and ns == -(-nb // per) >= 2
    table = list(struct.unpack_from(f"<{2 * ns}I", good, p + 8))
    assert p + 8 + 8 * ns + sum(table) == len(good)
    dec.decode_coefficients(good, n)

    streams = good[p + 8 + 8 * ns :]

    def with_table(per=per, count=ns, lengths=table, tail=b""):
        """The payload with another slice table before the same streams."""
        return good[:p] + struct.pack(f"<II{len(lengths)}I", per, count, *lengths) + streams + tail

    assert with_table() == good

    def bad(payload, match):
        with pytest.raises(ntcb.CorruptError, match=match):
            dec.decode_coefficients(payload, n)

    # The slice count: one more or one fewer than ceil(blocks / per slice),
    # with or without a table to match, and one past the end.
    bad(with_table(count=ns + 1), "slices, want")
    bad(with_table(count=ns + 1, lengths=table + [8, 0]), "slices, want")
    bad(with_table(count=ns - 1), "slices, want")
    bad(with_table(count=ns - 1, lengths=table[:-2]), "slices, want")
    bad(with_table(count=0, lengths=[]), "slices, want")
    bad(with_table(count=0xFFFFFFFF), "slices, want")
    # Blocks per slice: zero, or a count the slice count does not fit.
    bad(with_table(per=0), "slices of 0 blocks")
    other = next(b for b in range(1, nb + 2) if -(-nb // b) != ns)
    bad(with_table(per=other), "slices, want")
    # Lengths: a rANS stream under 8 bytes (the lengths still adding up),
    # and streams past the end of the payload.
    bad(with_table(lengths=[7, table[1] + table[0] - 7] + table[2:]), "slice 0 of 7")
    bad(with_table(lengths=[table[0] + 1] + table[1:]), f"slice {ns - 1} of")  # the slices shift: the last overruns
    bad(with_table(lengths=table[:-1] + [table[-1] + 1]), f"slice {ns - 1} of")
    bad(with_table(lengths=[0xFFFFFFFF] + table[1:]), "slice 0 of")
    bad(with_table(lengths=table[:-1] + [0xFFFFFFFF]), f"slice {ns - 1} of")
    # Bytes left after the last slice: appended, or left by a short length.
    bad(with_table(tail=b"\0"), "1 bytes after its slices")
    bad(with_table(lengths=table[:-2] + [table[-2] - 1, table[-1]]), "1 bytes after its slices")
    # Lengths that add up but move a byte from one slice's stream to the
    # next: every slice is decoded by itself and must end exactly.
    bad(with_table(lengths=[table[0] - 1, table[1] + 1] + table[2:]), "slice 0: .*end where they should|truncated")
    bad(with_table(lengths=[table[0], table[1] + 1, table[2] - 1] + table[3:]), "slice 0: .*end where they should")
    # Cut short inside the table.
    bad(good[: p + 8 + 4], "slices, want")
    bad(good[: p + 4], "ntc payload of")
    # The first two slices swapped, in the table and the streams: with both
    # full they decode, into each other's blocks (a slice does not carry its
    # position; each is decoded by itself).
    if 2 * per <= nb:
        s0 = streams[: table[0] + table[1]]
        s1 = streams[len(s0) :][: table[2] + table[3]]
        swapped = (good[:p] + struct.pack(f"<II{2 * ns}I", per, ns, *(table[2:4] + table[0:2] + table[4:]))
                   + s1 + s0 + streams[len(s0) + len(s1) :])
        got = dec.decode_coefficients(swapped, n)["coef"].reshape(nb, -1)
        want = dec.decode_coefficients(good, n)["coef"].reshape(nb, -1)
        np.testing.assert_array_equal(got[:per], want[per : 2 * per])
        np.testing.assert_array_equal(got[per : 2 * per], want[:per])
        np.testing.assert_array_equal(got[2 * per :], want[2 * per :])


def test_ntc_slice_table_checked_in_file():
    """The same through a file whose CRCs match: a CorruptError naming the file."""
    path = NTC_V5
    if not os.path.exists(path) or "ntc" not in ntcb.codec_names():
        pytest.skip("no ntc golden file or port")
    with open(path, "rb") as f:
        good = f.read()
    c = ntcb.Reader.from_bytes(good)._c
    for i in range(len(c.chunks)):
        _, payload, n, p = ntc_chunk(path, i)
        per, ns = struct.unpack_from("<II", payload, p)
        at = c.chunks[i].offset + 8 + p
        for field, value in [(0, per + 1), (4, ns + 1), (4, ns - 1), (8, 0xFFFF), (8 + 8 * ns - 4, 0)]:
            b = bytearray(good)
            old = struct.unpack_from("<I", b, at + field)[0]
            if value == old:
                continue
            struct.pack_into("<I", b, at + field, value)
            recrc_block(b, c.chunks[i].offset)
            with pytest.raises(ntcb.CorruptError) as e:
                read_all(bytes(b))
            assert "ntc" in str(e.value) and f"chunk {i}" in str(e.value), str(e.value)


def test_ntc_payload_v4_checked():
    """The version 4 layout (one stream, the raw bits running to the end) keeps its checks."""
    path = os.path.join(GOLDEN, "compat", "ntc_payload_v4.ntcb")
    dec, good, n, p = ntc_chunk(path)
    assert good[0] == 4
    dec.decode_coefficients(good, n)

    def bad(payload, match):
        with pytest.raises(ntcb.CorruptError, match=match):
            dec.decode_coefficients(payload, n)

    for v in (7, len(good) - p - 4 + 1, 0xFFFFFFFF):
        b = bytearray(good)
        struct.pack_into("<I", b, p, v)
        bad(bytes(b), "rANS stream of")
    bad(good + b"\0", "end where they should")
    bad(good[:-1], "end where they should|truncated")
    # Read as the other version, or as one this reader does not know.
    for v in (5, 3, 6):
        with pytest.raises(ntcb.CorruptError):
            dec.decode_coefficients(bytes([v]) + good[1:], n)
    _, v5, n5, _ = ntc_chunk(NTC_V5)
    with pytest.raises(ntcb.CorruptError):
        dec.decode_coefficients(bytes([4]) + v5[1:], n5)


# ntc files of payload version 6 by model version (test_golden.NTC_MODELS).
NTC_MODELS = {
    5: os.path.join(GOLDEN, "compat", "ntc_model_v5.ntcb"),
    6: os.path.join(GOLDEN, "compat", "ntc_model_v6.ntcb"),
    8: os.path.join(GOLDEN, "compat", "ntc_model_v8.ntcb"),
    "8cs": os.path.join(GOLDEN, "compat", "ntc_model_v8_classsteps.ntcb"),
    9: os.path.join(GOLDEN, "ntc.ntcb"),
    "9cs": os.path.join(GOLDEN, "classsteps", "ntc_classsteps.ntcb"),
}


def ntc_model(version):
    """The layout, model blob and chunk 0 (payload, sample count) of the ntc
    file of that model version."""
    if "ntc" not in ntcb.codec_names() or not os.path.exists(NTC_MODELS[version]):
        pytest.skip("no ntc golden file or port")
    r = ntcb.open(NTC_MODELS[version])
    cid = r._c.chunks[0].codec
    return r.layout, r._c.read_model(cid), r._c.read_chunk(0), r._c.chunks[0].count


def test_ntc_model_v6_checked():
    """A model of version 6 (prefix means: Prefix x D float16 right after
    the mean) is checked like version 5 plus its prefix means: its length
    includes them, they must be finite, and a version byte that does not
    match the layout is refused. Every problem is a CorruptError."""
    lay, m6, payload, n = ntc_model(6)
    _, m5, _, _ = ntc_model(5)
    assert m6[0] == 6 and m5[0] == 5
    D, P = lay.dim, lay.prefix
    assert P >= 1
    at = _ntc.MODEL_HEADER + 2 * D  # the prefix means, after the mean
    end = at + 2 * P * D
    assert len(m6) == len(m5) + 2 * P * D
    dec = _ntc.NTC(lay, m6)
    assert dec.pmean.shape == (P, D)

    def bad(model, match="ntc"):
        with pytest.raises(ntcb.CorruptError, match=match):
            _ntc.NTC(lay, bytes(model))

    # A prefix mean that is not finite (+-inf, NaN), first, inside, last.
    for i in (0, D - 1, P * D // 2, P * D - 1):
        for h in (0x7C00, 0xFC00, 0x7E00, 0x7FFF, 0xFFFF):
            b = bytearray(m6)
            struct.pack_into("<H", b, at + 2 * i, h)
            bad(b, "not finite")
    # Finite extremes are values like any other.
    for h in (0x7BFF, 0xFBFF, 0x0001, 0x8000):
        b = bytearray(m6)
        struct.pack_into("<H", b, at, h)
        _ntc.NTC(lay, bytes(b))
    # Cut short anywhere (inside the prefix means in particular) or one byte long.
    for cut in list(range(at - 2, end + 3)) + list(range(0, len(m6), 5)):
        bad(m6[:cut], "ntc model")
    bad(m6 + b"\0", "ntc model has")
    # The prefix means left out: a model of version 6 that is 2*P*D bytes
    # short, as is a version 5 model relabelled 6; a version 6 model
    # relabelled 5 is 2*P*D bytes long. (The table range is then read at
    # the wrong place: its check or the length check refuses the model.)
    size_or_range = "ntc model has|ntc rANS tables"
    bad(m6[:at] + m6[end:], size_or_range)
    bad(bytes([6]) + m5[1:], size_or_range)
    bad(bytes([5]) + m6[1:], size_or_range)
    bad(bytes([4]) + m6[1:], size_or_range)
    # Version 7 is read too: a version 6 model relabelled 7 lacks its K*32
    # class step codes.
    bad(bytes([7]) + m6[1:], size_or_range)
    for v in (0, 3, 10, 255):
        bad(bytes([v]) + m6[1:], "model version")
    # A model of the same layout with prefix tokens after all (Prefix+1)
    # would read its tables at the wrong place.
    with pytest.raises(ntcb.CorruptError):
        _ntc.NTC(ntcb.Layout(lay.tokens + 1, D, P + 1, lay.grid_h, lay.grid_w), m6)

    # Its prefix means cut out and the version byte set to 5: a valid model
    # of version 5 decoding the same payload to the same grid tokens, and
    # prefix tokens without their mean (the rest of the model is shared).
    d5 = _ntc.NTC(lay, bytes([5]) + m6[1:at] + m6[end:])
    assert d5.pmean is None
    a, b = dec.decode_coefficients(payload, n), d5.decode_coefficients(payload, n)
    np.testing.assert_array_equal(a["coef"], b["coef"])
    assert b["prefix"].dtype == dec.pmean.dtype == np.float32  # a float32 add
    np.testing.assert_array_equal(a["prefix"].view(np.uint32), (b["prefix"] + dec.pmean).view(np.uint32))
    assert not np.array_equal(a["prefix"], b["prefix"])
    g6, g5 = dec.decode(payload, n), d5.decode(payload, n)
    np.testing.assert_array_equal(g6[:, P:], g5[:, P:])


def test_ntc_model_v8_flags():
    """Model version 8 has one flag, bit 0: its class step codes follow the
    tables. A flag set without the codes, the codes without the flag, any
    other flag, or the flag on an older version: a CorruptError."""
    lay, m8, payload, n = ntc_model(8)
    lay2, m8c, payload2, n2 = ntc_model("8cs")
    assert lay2 == lay
    assert m8[:2] == bytes([8, 0]) and m8c[:2] == bytes([8, 1])
    _, m6, _, _ = ntc_model(6)
    assert _ntc.NTC(lay, m8).csc is None
    dc = _ntc.NTC(lay, m8c)
    assert dc.csc is not None and dc.csc.shape == (dc.k, 32)
    dc.decode(payload2, n2)

    def bad(model, match):
        with pytest.raises(ntcb.CorruptError, match=match):
            _ntc.NTC(lay, bytes(model))

    bad(m8[:1] + b"\x01" + m8[2:], "ntc model has")  # the flag without the codes
    bad(m8c[:1] + b"\x00" + m8c[2:], "ntc model has")  # the codes without the flag
    bad(m8c[: -32 * dc.k], "ntc model has")
    for f in (2, 3, 0x80, 0xFF):
        bad(m8[:1] + bytes([f]) + m8[2:], "flags")
    for f in (1, 2):
        bad(m6[:1] + bytes([f]) + m6[2:], "flags")
    # A class step code out of range, or on class 0 (unused).
    K = dc.k
    for at, v in ((len(m8c) - 32 * K + 1, 33), (len(m8c) - 1, -33 & 0xFF), (len(m8c) - 32 * K, 1)):
        b = bytearray(m8c)
        b[at] = v
        bad(b, "class step")


def test_ntc_model_v9_householder():
    """Model version 9 stores a plain fit's basis as Householder vectors
    (flags bit 1): K code widths, then per vector a float16 scale and its
    packed codes. A width out of 2..8, a negative or non-finite scale, the
    code -2^(w-1), float16 rows beside the vectors, the flag on version 8 or
    cleared, or a model cut short: a CorruptError. The decoded basis is
    orthonormal."""
    lay, m9, payload, n = ntc_model(9)
    _, m9c, _, _ = ntc_model("9cs")
    assert m9[:2] == bytes([9, 2]) and m9c[:2] == bytes([9, 1])
    dec = _ntc.NTC(lay, m9)
    assert dec.hh and not _ntc.NTC(lay, m9c).hh
    K, D, P = dec.k, lay.dim, lay.prefix
    np.testing.assert_allclose(dec.basis.astype(np.float64) @ dec.basis.T.astype(np.float64), np.eye(K), atol=1e-5)
    dec.decode(payload, n)

    def bad(model, match):
        with pytest.raises(ntcb.CorruptError, match=match):
            _ntc.NTC(lay, bytes(model))

    def edit(at, v):
        b = bytearray(m9)
        b[at] = v
        return b

    at = _ntc.MODEL_HEADER + 2 * D + 2 * P * D  # the widths
    w = m9[at]
    bad(edit(at + 1, 1), "vector 1 has 1-bit codes")
    bad(edit(at, 9), "vector 0 has 9-bit codes")
    bad(edit(at, 0), "vector 0 has 0-bit codes")
    bad(edit(at + K + 1, m9[at + K + 1] | 0x80), "scale")
    b = edit(at + K + 1, 0x7C)
    b[at + K] = 0
    bad(b, "scale")
    first = at + K + 2
    bad(edit(first, m9[first] & ~((1 << w) - 1) | 1 << (w - 1)), "code out of range")
    b = bytearray(m9)
    struct.pack_into("<H", b, 16, 1)
    bad(b, "Householder basis and 1 float16 rows")
    bad(edit(0, 8), "flags")
    bad(edit(1, 0), "ntc model has|ntc rANS tables")
    bad(edit(1, 4), "flags")
    for cut in (at - 1, at + 1, at + K + 3, len(m9) - 1):
        bad(m9[:cut], "ntc model")


def test_ntc_outlier_rows_get_no_prefix_mean():
    """With a model of version 6 only prefix rows get their position's
    prefix mean: an outlier grid token (an int8 row of the same form)
    decodes to its code times its scale. The golden payload with an outlier
    added to sample 0 (after its prefix rows: count 1, gap, row)."""
    lay, m6, payload, n = ntc_model(6)
    dec = _ntc.NTC(lay, m6)
    D, P = lay.dim, lay.prefix
    row = 2 + D
    p = _ntc.HEAD_V6 + P * row
    assert payload[0] == 6 and payload[p] == 0, "sample 0 has no outliers"
    gap = 5
    out = struct.pack("<H", 0x3C00) + bytes(range(D))  # scale 1, codes 0..D-1
    bad = payload[:p] + bytes([1, gap]) + out + payload[p + 1 :]
    got = dec.decode(bad, n)
    np.testing.assert_array_equal(got[0, P + gap], np.arange(D, dtype=np.float32))
    want = dec.decode(payload, n)
    keep = np.ones(lay.tokens, bool)
    keep[P + gap] = False
    np.testing.assert_array_equal(got[0, keep], want[0, keep])
    np.testing.assert_array_equal(got[1:], want[1:])
    # The same row as sample 0's first prefix row gets the mean.
    pre = payload[: _ntc.HEAD_V6] + out + payload[_ntc.HEAD_V6 + row :]
    got = dec.decode(pre, n)
    np.testing.assert_array_equal(got[0, 0], np.arange(D, dtype=np.float32) + dec.pmean[0])
    # Outlier indices past the sample's tokens are refused.
    for g in (lay.tokens - P, 0x7F):
        with pytest.raises(ntcb.CorruptError, match="outlier"):
            dec.decode(payload[:p] + bytes([1, g]) + out + payload[p + 1 :], n)


def test_ntc_model_v6_checked_in_file():
    """A version 6 model in a file whose CRCs and hash match, with a prefix
    mean that is not finite or its version byte changed: a CorruptError
    naming the ntc model, never a crash."""
    path = NTC_MODELS[6]
    lay, m6, _, _ = ntc_model(6)
    with open(path, "rb") as f:
        good = f.read()
    c = ntcb.Reader.from_bytes(good)._c
    (mi,) = [i for i, m in enumerate(c.models) if m.codec == _ntc.NTC.id]
    mo = c.models[mi].offset
    assert bytes(good[mo + 8 : mo + 8 + len(m6)]) == m6
    at = _ntc.MODEL_HEADER + 2 * lay.dim
    msize = container.ENTRY_SIZES[c.version][0]
    for pos, value in [(at, b"\x00\x7c"), (at + 2 * lay.prefix * lay.dim - 2, b"\xff\x7f"), (0, b"\x05")]:
        b = bytearray(good)
        b[mo + 8 + pos : mo + 8 + pos + len(value)] = value
        recrc_block(b, mo)
        blob = bytes(b[mo + 8 : mo + 8 + len(m6)])
        if c.version >= 2:
            sha = c.index_offset + 8 + 32 + mi * msize + 16
            b[sha : sha + 32] = hashlib.sha256(blob).digest()
            recrc_block(b, c.index_offset)
        with pytest.raises(ntcb.CorruptError) as e:
            read_all(bytes(b))
        assert "ntc model" in str(e.value), str(e.value)
