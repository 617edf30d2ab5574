"""The Python reader against the golden files written by the Go code.

testdata/golden/<codec>.ntcb is written by pkg/ntcb's TestGoldenCodecs
(go test ./pkg/ntcb -run TestGoldenCodecs -update) and <codec>.decoded.npy
holds what the Go reader decodes it to (float32). testdata/golden/compat
holds files of older container, payload and model versions that the Go
reader still reads (compat/ntc_model_v<N>.ntcb: the ntc golden file of
model version N, written by the Go encoder of its day).
"""

import glob
import os
import pickle

import numpy as np
import pytest

import ntcb
from ntcb import codecs

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
GOLDEN = os.path.join(ROOT, "testdata", "golden")
# Files of older formats the Go reader still reads (not one per codec).
COMPAT = os.path.join(GOLDEN, "compat")
GOLDEN_FILES = sorted(glob.glob(os.path.join(GOLDEN, "*.ntcb")))
GO_CODECS = [os.path.basename(p)[: -len(".ntcb")] for p in GOLDEN_FILES]

# Codecs whose decoding is bit-exact across implementations: integer
# arithmetic and one float32 multiply per value.
EXACT = {"fp16", "int8", "fp8", "int4"}


def golden(name):
    return os.path.join(GOLDEN, name + ".ntcb")


def expected(name):
    return np.load(os.path.join(GOLDEN, name + ".decoded.npy"))


def test_golden_files_present():
    assert {"fp16", "int8", "fp8", "int4"} <= set(GO_CODECS), GOLDEN_FILES


@pytest.mark.parametrize("name", GO_CODECS)
def test_python_knows_every_go_codec(name):
    assert name in ntcb.codec_names(), f"the Go code writes codec {name!r}, python/ntcb cannot decode it"


@pytest.mark.parametrize("name", GO_CODECS)
def test_decodes_like_go(name):
    if name not in ntcb.codec_names():
        pytest.skip(f"codec {name} not ported")
    want = expected(name)
    with ntcb.open(golden(name)) as r:
        assert r.codec == name
        assert r.shape == want.shape
        r.verify()
        got = r.read(range(len(r)))
    assert got.dtype == np.float32 and got.shape == want.shape
    if name in EXACT:
        np.testing.assert_array_equal(got.view(np.uint32), want.view(np.uint32))
        return
    assert_close_to_go(name, got, want)


def assert_close_to_go(name, got, want):
    """Float arithmetic in another order (Go may fuse multiply-adds): compares
    per token, relative to the token's norm."""
    err = np.abs(got - want).max(axis=-1)
    norm = np.linalg.norm(want, axis=-1) + 1e-6
    rel = (err / norm).max()
    print(f"{name}: max |python - go| = {np.abs(got - want).max():.3g}, max relative to the token norm = {rel:.3g}")
    assert rel < 1e-3


def ntc_payload_versions(path):
    with ntcb.open(path) as r:
        return [r._c.read_chunk(i)[0] for i in range(r.num_chunks)]


def test_ntc_golden_is_payload_v6():
    """The ntc golden file is what the Go encoder writes now: payload version 6 (sample-major)."""
    if "ntc" not in GO_CODECS:
        pytest.skip("no ntc golden file")
    assert set(ntc_payload_versions(golden("ntc"))) == {6}


def test_ntc_lanes16():
    """testdata/golden/lanes/ntc_lanes16.ntcb (pkg/ntcb's TestGoldenLanes16):
    the ntc golden input with slices of 16 rANS lanes, which the Go encoder
    writes for slices of 32768 symbols and more. The pure-Python reference
    decoder decodes it to what the Go reader decodes it to."""
    path = os.path.join(GOLDEN, "lanes", "ntc_lanes16.ntcb")
    want = np.load(os.path.join(GOLDEN, "lanes", "ntc_lanes16.decoded.npy"))
    with ntcb.open(path, decoder="python") as r:
        payloads = [r._c.read_chunk(i) for i in range(r.num_chunks)]
        assert {(p[0], p[8]) for p in payloads} == {(6, 16)}
        assert r.codec == "ntc" and r.shape == want.shape
        r.verify()
        got = r.read(range(len(r)))
    assert got.dtype == np.float32 and got.shape == want.shape
    assert_close_to_go("ntc (16 lanes)", got, want)
    # Another lane count in the head is rejected.
    codec = r._codec(r._c.chunks[0].codec)
    bad = bytearray(payloads[0])
    for lanes in (2, 9, 15, 17, 32):
        bad[8] = lanes
        with pytest.raises(ntcb.CorruptError):
            codec.decode(bytes(bad), r._c.chunks[0].count)


COMPAT_NTC = {4: "ntc_payload_v4", 5: "ntc_payload_v5"}


@pytest.mark.parametrize("version", sorted(COMPAT_NTC))
def test_ntc_payload_compat(version):
    """testdata/golden/compat/ntc_payload_v<version>.ntcb, written by the Go
    encoder of that payload version (4: one coefficient stream per chunk; 5:
    slices across samples), decodes to what the Go reader decodes it to."""
    path = os.path.join(COMPAT, COMPAT_NTC[version] + ".ntcb")
    want = np.load(os.path.join(COMPAT, COMPAT_NTC[version] + ".decoded.npy"))
    assert set(ntc_payload_versions(path)) == {version}
    with ntcb.open(path) as r:
        assert r.codec == "ntc" and r.shape == want.shape
        r.verify()
        got = r.read(range(len(r)))
    assert got.dtype == np.float32 and got.shape == want.shape
    assert_close_to_go(f"ntc (payload v{version})", got, want)


# ntc files of payload version 6 by model: name -> (path, model version,
# class step codes). The golden file is what the Go encoder writes now
# (model version 9: the basis as Householder vectors, flags bit 1); compat
# holds the golden file of model version 5 (no prefix means, which the Go
# encoder still writes when it appends to a dataset of a version 5 model),
# 6 (prefix means, plain from bucket 20), 7 (class steps always) and 8 (the
# trellis up to bucket 28; int8 rows), with version 8's class steps and
# high-rate files; pkg/ntcb's TestGoldenClassSteps writes the golden input
# fitted with gradient fields, whose model carries class step codes (flags
# bit 0) and int8 rows.
NTC_MODELS = {
    "v5": (os.path.join(COMPAT, "ntc_model_v5.ntcb"), 5, False),
    "v6": (os.path.join(COMPAT, "ntc_model_v6.ntcb"), 6, False),
    "v7": (os.path.join(COMPAT, "ntc_model_v7.ntcb"), 7, True),
    "v8": (os.path.join(COMPAT, "ntc_model_v8.ntcb"), 8, False),
    "v8-classsteps": (os.path.join(COMPAT, "ntc_model_v8_classsteps.ntcb"), 8, True),
    "v8-highrate": (os.path.join(COMPAT, "ntc_model_v8_snr36.ntcb"), 8, False),
    "v9": (golden("ntc"), 9, False),
    "v9-classsteps": (os.path.join(GOLDEN, "classsteps", "ntc_classsteps.ntcb"), 9, True),
    # pkg/ntcb's TestGoldenHighRate: the golden input at 36 dB, whose
    # classes fill the trellis' buckets and the plain ones.
    "v9-highrate": (os.path.join(GOLDEN, "highrate", "ntc_snr36.ntcb"), 9, False),
}


def model_flags(version, steps):
    """The flags of a golden model: class steps (bit 0, from version 8) or,
    from version 9, the Householder basis of a plain fit (bit 1)."""
    if version >= 9:
        return 1 if steps else 2
    return 1 if steps and version >= 8 else 0


def ntc_model(r):
    """The (stored) model blob of an ntc file and its decoder."""
    cid = r._c.chunks[0].codec
    return r._c.read_model(cid), r._codec(cid)


@pytest.mark.parametrize("name", sorted(NTC_MODELS))
def test_ntc_model_compat(name):
    """The ntc file of each model version (payload version 6) decodes with
    the pure-Python decoder to what the Go reader decodes it to; its prefix
    tokens, int8 rows (from model version 6 plus their position's prefix
    mean, a float32 add), bit for bit."""
    if "ntc" not in ntcb.codec_names():
        pytest.skip("ntc not ported")
    path, version, steps = NTC_MODELS[name]
    want = np.load(path[: -len(".ntcb")] + ".decoded.npy")
    assert set(ntc_payload_versions(path)) == {6}
    with ntcb.open(path, decoder="python") as r:
        model, dec = ntc_model(r)
        assert model[0] == version == dec.mver
        assert model[1] == model_flags(version, steps)
        assert dec.hh == (model[1] & 2 != 0)
        assert dec.pb == (28 if version >= 8 else 20)
        P, D = r.layout.prefix, r.layout.dim
        assert P >= 1
        if version >= 6:
            assert dec.pmean.shape == (P, D) and dec.pmean.dtype == np.float32
            raw = np.frombuffer(model, dtype="<f2", count=P * D, offset=22 + 2 * D)
            np.testing.assert_array_equal(dec.pmean.reshape(-1), raw.astype(np.float32))
            assert np.abs(dec.pmean).max() > 0.1, "the golden file's prefix means should matter"
        else:
            assert dec.pmean is None
        if steps:
            K = dec.k
            assert dec.csc.shape == (K, 32) and (dec.csc[:, 0] == 0).all()
            np.testing.assert_array_equal(dec.csc.reshape(-1), np.frombuffer(model, dtype=np.int8, offset=len(model) - 32 * K))
            assert (dec.csc < 0).any() and (dec.csc > 0).any(), "the golden file's class steps should matter"
        else:
            assert getattr(dec, "csc", None) is None
        assert r.codec == "ntc" and r.shape == want.shape
        r.verify()
        got = r.read(range(len(r)))
    assert got.dtype == np.float32 and got.shape == want.shape
    assert_close_to_go(f"ntc (model {name})", got, want)
    np.testing.assert_array_equal(got[:, :P].view(np.uint32), want[:, :P].view(np.uint32))


def test_ntc_model_versions_of_goldens():
    """The ntc golden files of every model version hold the same samples."""
    readers = {name: ntcb.open(path) for name, (path, _, _) in NTC_MODELS.items()}
    try:
        first = readers["v8"]
        for name, r in readers.items():
            assert ntc_model(r)[0][0] == NTC_MODELS[name][1], name
            assert r.keys() == first.keys() and r.layout == first.layout and r.shape == first.shape, name
    finally:
        for r in readers.values():
            r.close()


@pytest.mark.parametrize("version", (8, 9))
def test_ntc_golden_covers_the_wider_trellis(version):
    """Model versions 8 and 9 code buckets 20 to 27 with the trellis and
    those from 28 plainly: the high-rate golden file has classes in all
    three ranges (the one of class steps in the first two), so that a
    reader that codes buckets 20 to 27 plainly, as versions 5 to 7 do,
    fails."""
    if "ntc" not in ntcb.codec_names():
        pytest.skip("ntc not ported")
    for name, plain in ((f"v{version}-highrate", True), (f"v{version}-classsteps", False)):
        with ntcb.open(NTC_MODELS[name][0], decoder="python") as r:
            _, dec = ntc_model(r)
            bs = dec._plan(dec.step_code)[2]
            ranges = (any(b < 20 for b in bs), any(20 <= b < 28 for b in bs), any(b >= 28 for b in bs))
            assert ranges == (True, True, plain), (name, sorted(set(bs)))


@pytest.mark.parametrize("name", sorted(EXACT))
def test_sample_by_sample(name):
    want = expected(name)
    r = ntcb.open(golden(name))
    for i in [2, 0, 1, -1]:
        np.testing.assert_array_equal(r[i], want[i])


def test_reader_api():
    want = expected("int8")
    r = ntcb.open(golden("int8"))
    n, t, d = want.shape
    assert len(r) == n == 3
    assert r.shape == (n, t, d)
    keys = r.keys()
    assert keys == [f"golden#{i}" for i in range(n)]
    assert r.key(1) == "golden#1" and r.index("golden#2") == 2
    assert "golden#0" in r and "nope" not in r
    np.testing.assert_array_equal(r.get("golden#1"), want[1])
    np.testing.assert_array_equal(r["golden#1"], want[1])
    np.testing.assert_array_equal(r.read([2, 0, 2]), want[[2, 0, 2]])
    np.testing.assert_array_equal(r.read(["golden#2", 1]), want[[2, 1]])
    np.testing.assert_array_equal(r[1:], want[1:])
    np.testing.assert_array_equal(np.stack(list(r)), want)
    assert [k for k, _ in r.items()] == keys
    assert r.read([]).shape == (0, t, d)
    # metadata
    m = r.meta
    assert m["format"] == "ntcb" and m["codec"] == "int8"
    assert m["layout"] == {"tokens": 17, "dim": 37, "prefix_tokens": 1, "grid_h": 4, "grid_w": 4}
    assert m["shape"] == [n, t, d] and m["dtype"] == "float16"
    assert m["meta"]["source"].startswith("internal/sample")
    assert r.layout == ntcb.Layout(17, 37, 1, 4, 4)
    assert r.num_chunks == 2 and r.version == 2
    with pytest.raises(IndexError):
        r[3]
    with pytest.raises(IndexError):
        r.read([0, -4])
    with pytest.raises(KeyError) as e:
        r.get("nope")
    assert isinstance(e.value, ntcb.NotFound) and "nope" in str(e.value)
    with pytest.raises(TypeError):
        r[1.5]
    r.close()


def test_dtype_option():
    want = expected("fp16")
    r = ntcb.open(golden("fp16"), dtype=np.float16)
    got = r[0]
    assert got.dtype == np.float16
    np.testing.assert_array_equal(got, want[0].astype(np.float16))


def test_results_are_copies():
    r = ntcb.open(golden("fp16"))
    a = r[0]
    a[:] = 0
    assert r[0].any()


def counted_reads(monkeypatch, r):
    reads = []
    src = r._c._src
    orig = src.read_at

    def counting(n, off):
        reads.append((n, off))
        return orig(n, off)

    monkeypatch.setattr(src, "read_at", counting)
    return reads


def test_reads_only_the_needed_sample(monkeypatch):
    """A sample of a split chunk costs the chunk's head and its own part."""
    r = ntcb.open(golden("fp16"), decoder="python")  # the Python reads (the native decoder reads in Go)
    reads = counted_reads(monkeypatch, r)
    ch = r._c.chunks[0]
    assert ch.split
    s0, s1 = r._c.samples[0], r._c.samples[1]
    r[0]  # its part follows the head: one read
    assert reads == [(8 + ch.head + s0.part_len, ch.offset)]
    reads.clear()
    r[1]  # the head, then its part
    assert reads == [(8 + ch.head, ch.offset), (s1.part_len, ch.offset + 8 + s1.part_off)]
    reads.clear()
    r.read([1, 0])  # one run: the head and both parts in one read
    assert reads == [(8 + ch.head + s0.part_len + s1.part_len, ch.offset)]


def test_reads_only_the_needed_chunk(monkeypatch):
    """A version 1 file: a sample costs its whole chunk, which is cached."""
    r = ntcb.open(os.path.join(COMPAT, "fp16_container_v1.ntcb"), decoder="python")
    reads = counted_reads(monkeypatch, r)
    r[2]  # chunk 1 holds sample 2 alone
    ch = r._c.chunks[1]
    assert reads == [(ch.length + 12, ch.offset)]
    r[2]
    assert len(reads) == 1, "the last decoded chunk is cached"
    r[0]
    r[1]
    assert len(reads) == 2


def test_pickle_reopens():
    r = ntcb.open(golden("int4"))
    r2 = pickle.loads(pickle.dumps(r))
    np.testing.assert_array_equal(r2[1], r[1])
    assert r2.path == r.path


def test_from_bytes():
    with open(golden("fp8"), "rb") as f:
        r = ntcb.Reader.from_bytes(f.read())
    np.testing.assert_array_equal(r.read(range(len(r))), expected("fp8"))


def test_layout_matches_codec_go():
    # The tail group of int4 (37 = 32 + 5, odd) and a zero scale are covered.
    r = ntcb.open(golden("int4"))
    assert codecs.Int4(r.layout, None).token_bytes() == (2 + 16) + (2 + 3)
    assert not r[2][1].any()


def test_read_torch_cpu():
    torch = pytest.importorskip("torch")
    r = ntcb.open(golden("int8"))
    t = r.read_torch([2, 0], device="cpu")
    assert isinstance(t, torch.Tensor) and t.dtype == torch.float32
    np.testing.assert_array_equal(t.numpy(), expected("int8")[[2, 0]])


@pytest.mark.parametrize("name", sorted(NTC_MODELS))
def test_read_torch_ntc_inverse_on_device(name):
    """The learned codec's torch path (inverse transform in torch) agrees
    with Go, for models of every version, with and without prefix means and
    class steps."""
    torch = pytest.importorskip("torch")
    if "ntc" not in GO_CODECS or "ntc" not in ntcb.codec_names():
        pytest.skip("no ntc golden file or port")
    path = NTC_MODELS[name][0]
    r = ntcb.open(path)
    idx = [5, 0, 7, 3]
    t = r.read_torch(idx, device="cpu")
    want = np.load(path[: -len(".ntcb")] + ".decoded.npy")[idx]
    assert t.shape == want.shape
    np.testing.assert_allclose(t.numpy(), want, rtol=0, atol=1e-4 * float(np.abs(want).max()))


COMPAT_FILES = sorted(glob.glob(os.path.join(COMPAT, "*.ntcb")))


@pytest.mark.parametrize("path", COMPAT_FILES, ids=os.path.basename)
def test_compat_decodes_like_go(path):
    """Every file of an older container or payload version in
    testdata/golden/compat decodes to what the Go reader decodes it to."""
    want = np.load(path[: -len(".ntcb")] + ".decoded.npy")
    with ntcb.open(path) as r:
        r.verify()
        got = r.read(range(len(r)))
        name = r.codec
    assert got.shape == want.shape
    if name in EXACT:
        np.testing.assert_array_equal(got.view(np.uint32), want.view(np.uint32))
    else:
        assert_close_to_go(f"{name} ({os.path.basename(path)})", got, want)
