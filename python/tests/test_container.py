"""The container layer against pkg/container's golden files (format versions 1 and 2)."""

import hashlib
import os

import pytest

import ntcb
from ntcb import container

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
V1 = os.path.join(ROOT, "testdata", "container", "golden_v1.ntcb")
V2 = os.path.join(ROOT, "testdata", "container", "golden_v2.ntcb")


def seq(n, start):
    return bytes((start + i) & 0xFF for i in range(n))


def check_common(c, meta):
    assert [(ch.offset, ch.length, ch.codec, ch.first, ch.count) for ch in c.chunks] == [
        (50, 48, 1, 0, 3),
        (122, 20, 7, 3, 2),
        (154, 0, 9, 5, 1),
    ]
    assert [s.key for s in c.samples] == [f"img/00{i}" for i in range(6)]
    assert (c.samples[4].tokens, c.samples[4].dim) == (5, 2)
    assert bytes(c.metadata) == meta
    assert c.read_model(7) == b"model blob for codec 7" and c.read_model(9) == b""
    assert c.read_chunk(0) == seq(48, 0)
    c.verify()


def test_version_2():
    c = container.Container(V2)
    assert c.version == 2
    check_common(c, b'{"created_by":"golden","note":"ntcb v2 fixture"}')
    assert [(ch.split, ch.head) for ch in c.chunks] == [(True, 6), (False, 0), (True, 0)]
    assert [(s.part_off, s.part_len) for s in c.samples[:3]] == [(6, 10), (16, 12), (28, 20)]
    assert c.models[0].sha256 == hashlib.sha256(b"model blob for codec 7").digest()
    ext = c.models[2]
    assert ext.external and ext.codec == 11 and ext.length == 1234
    assert ext.sha256 == hashlib.sha256(b"an external model").digest()
    with pytest.raises(ntcb.ExternalModel):
        c.read_model(11)
    assert c.read_sample_range(0, 1, 2) == seq(6, 0) + seq(32, 16)
    assert c.read_sample_range(0, 0, 1) == seq(16, 0)
    assert c.read_sample_range(1, 1, 1) == seq(20, 100)  # not split: whole
    assert c.read_sample_range(2, 0, 1) == b""
    with pytest.raises(ntcb.NotFound):
        c.read_sample_range(0, 2, 2)


def test_version_1():
    c = container.Container(V1)
    assert c.version == 1
    check_common(c, b'{"created_by":"golden","note":"ntcb v1 fixture"}')
    assert not any(ch.split for ch in c.chunks)
    assert c.read_sample_range(0, 2, 1) == seq(48, 0)


def test_split_damage_is_local():
    """A damaged payload byte fails the sample reads that need it, and no other."""
    data = open(V2, "rb").read()
    c0 = container.Container.from_bytes(data).chunks[0]
    for at in range(c0.length):
        b = bytearray(data)
        b[c0.offset + container.BLOCK_HEADER_SIZE + at] ^= 0x40
        c = container.Container.from_bytes(bytes(b))
        for j in range(c0.count):
            s = c.samples[j]
            needed = at < c0.head or s.part_off <= at < s.part_off + s.part_len
            if needed:
                with pytest.raises(ntcb.ChecksumError):
                    c.read_sample_range(0, j, 1)
            else:
                c.read_sample_range(0, j, 1)
        with pytest.raises(ntcb.ChecksumError):
            c.verify()


def test_every_byte_flip_detected():
    """As in Go: any changed byte of the version 2 golden file is refused at
    open or by verify."""
    data = open(V2, "rb").read()
    for i in range(len(data)):
        b = bytearray(data)
        b[i] ^= 0x24
        try:
            container.Container.from_bytes(bytes(b)).verify()
        except ntcb.NtcbError:
            continue
        pytest.fail(f"byte {i} ^ 0x24 accepted")
