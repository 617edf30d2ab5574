"""Datasets, models by reference and remote reads, against the Go-written
golden files (testdata/golden/dataset, testdata/golden/byref) and, where Go
is installed, datasets the current ntc writes."""

import json
import os
import pickle
import random
import shutil
import subprocess
import sys

import numpy as np
import pytest

import ntcb
from ntcb import _remote, dataset

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "scripts"))
from serve_dir import Server  # noqa: E402
from test_golden import assert_close_to_go  # noqa: E402

ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
GOLDEN = os.path.join(ROOT, "testdata", "golden")
DATASET = os.path.join(GOLDEN, "dataset")
BYREF = os.path.join(GOLDEN, "byref")
SAMPLE48 = os.path.join(ROOT, "internal", "sample", "deit_tiny_block10_48.npy")


@pytest.fixture
def golden_copy(tmp_path):
    d = tmp_path / "ds"
    shutil.copytree(DATASET, d)
    return str(d)


@pytest.fixture
def server(tmp_path):
    s = Server(str(tmp_path))
    yield s
    s.close()


# -- models by reference -------------------------------------------------------


def test_byref_golden_finds_its_model():
    want = np.load(os.path.join(BYREF, "data.decoded.npy"))
    with ntcb.open(os.path.join(BYREF, "data.ntcb")) as r:
        ext = [m for m in r._c.models if m.external]
        assert len(ext) == 1 and r.meta["model_file"] == "clip.ntcm"
        r.verify()
        got = r.read(range(len(r)))
    assert_close_to_go("ntc (model by reference)", got, want)


def test_byref_missing_or_other_model(tmp_path):
    shutil.copy(os.path.join(BYREF, "data.ntcb"), tmp_path / "data.ntcb")
    with ntcb.open(str(tmp_path / "data.ntcb")) as r:
        sha = next(m for m in r._c.models if m.external).sha256.hex()
        with pytest.raises(ntcb.ModelNotFound) as e:
            r[0]
    assert sha in str(e.value) and "data.ntcb" in str(e.value)
    # Another model by the recorded name is not taken for it.
    shutil.copy(os.path.join(DATASET, "model.ntcm"), tmp_path / "clip.ntcm")
    with ntcb.open(str(tmp_path / "data.ntcb")) as r, pytest.raises(ntcb.ModelNotFound) as e:
        r[0]
    assert "clip.ntcm (model " in str(e.value)
    # Named, it is found wherever it is; any name next to the file will do.
    want = np.load(os.path.join(BYREF, "data.decoded.npy"))
    with ntcb.open(str(tmp_path / "data.ntcb"), model=os.path.join(BYREF, "clip.ntcm")) as r:
        assert_close_to_go("named model", r.read([0, 1]), want[:2])
    os.remove(tmp_path / "clip.ntcm")
    shutil.copy(os.path.join(BYREF, "clip.ntcm"), tmp_path / "renamed.ntcm")
    with ntcb.open(str(tmp_path / "data.ntcb")) as r:
        assert_close_to_go("model found by scan", r.read([2]), want[2:3])


# -- the golden dataset --------------------------------------------------------


def test_golden_dataset():
    want = np.load(os.path.join(DATASET, "decoded.npy"))
    for loc in (DATASET, DATASET + "/", os.path.join(DATASET, "index.json")):
        ds = ntcb.open(loc)
        assert isinstance(ds, ntcb.Dataset)
        assert len(ds) == 8 and ds.num_shards == 3 and ds.shape == want.shape and ds.codec == "ntc"
        assert ds.keys() == [f"golden#{i}" for i in range(8)]
        assert ds.key(4) == "golden#4" and ds.index("golden#7") == 7 and "golden#3" in ds and "x" not in ds
        assert list(ds.shard_range(1)) == [3, 4, 5] and ds.locate(7) == (2, 1)
        assert_close_to_go("dataset", ds.read(range(8)), want)
        assert_close_to_go("dataset by key", ds.get("golden#5")[None], want[5:6])
        assert_close_to_go("dataset slice", ds[-3:], want[5:])
        assert_close_to_go("dataset mixed", ds.read(["golden#7", 0, 7]), want[[7, 0, 7]])
        ds.verify()
        with pytest.raises(ntcb.NotFound):
            ds.get("nope")
        with pytest.raises(IndexError):
            ds[8]
        ds.close()


def test_dataset_pickles(golden_copy):
    ds = ntcb.open(golden_copy)
    a = ds[4]
    ds2 = pickle.loads(pickle.dumps(ds))
    np.testing.assert_array_equal(ds2[4], a)


def test_dataset_bounds_open_shards(golden_copy):
    ds = ntcb.Dataset(golden_copy, max_open=1)
    for i in (0, 7, 3, 0):
        ds[i]
    assert len(ds._open) == 1


def test_dataset_mismatch(golden_copy):
    shard = os.path.join(golden_copy, "shard-00001.ntcb")
    b = bytearray(open(shard, "rb").read())
    for change, at_open in ((lambda b: b + b"\0", True), (lambda b: b[:600] + bytes([b[600] ^ 1]) + b[601:], False)):
        with open(shard, "wb") as f:
            f.write(change(bytes(b)))
        ds = ntcb.open(golden_copy)
        if at_open:
            with pytest.raises(ntcb.MismatchError) as e:
                ds[4]
            assert "shard-00001.ntcb" in str(e.value)
        with pytest.raises(ntcb.NtcbError) as e:
            ds.verify()
        assert "shard-00001.ntcb" in str(e.value)
    with open(shard, "wb") as f:
        f.write(bytes(b))


def index_json():
    with open(os.path.join(DATASET, "index.json"), encoding="utf-8") as f:
        return json.load(f)


def bad(change):
    x = index_json()
    change(x)
    return json.dumps(x).encode()


@pytest.mark.parametrize(
    "data, exc",
    [
        (b"{", ntcb.CorruptError),
        (b'{"format":"mds","version":2}', ntcb.CorruptError),
        (b'{"format":"ntc-dataset","version":2}', ntcb.UnsupportedVersion),
        (bad(lambda x: x.update(extra=1)), ntcb.CorruptError),
        (bad(lambda x: x.update(samples=9)), ntcb.CorruptError),
        (bad(lambda x: x["shards"][0].update(file="../../etc/passwd")), ntcb.CorruptError),
        (bad(lambda x: x["shards"][0].update(file="/etc/passwd")), ntcb.CorruptError),
        (bad(lambda x: x["shards"][0].update(file="http://evil/x")), ntcb.CorruptError),
        (bad(lambda x: x["shards"][1].update(file=x["shards"][0]["file"])), ntcb.CorruptError),
        (bad(lambda x: x["shards"][0].update(sha256="AB" * 32)), ntcb.CorruptError),
        (bad(lambda x: x["shards"][0].update(bytes=1 << 50)), ntcb.TooLargeError),
        (bad(lambda x: x["shards"][0].update(bytes=True)), ntcb.CorruptError),
        (bad(lambda x: x["shards"][1]["keys"].__setitem__(0, "golden#0")), ntcb.CorruptError),
        (bad(lambda x: x["shards"][1].update(keys=[])), ntcb.CorruptError),
        (bad(lambda x: x["models"][0].update(codec="zip")), ntcb.CorruptError),
        (bad(lambda x: x["layout"].update(grid_w=7)), ntcb.NtcbError),
        (b"[" * 100000, ntcb.CorruptError),
        (b" " * (dataset.MAX_INDEX_BYTES + 1), ntcb.TooLargeError),
    ],
)
def test_hostile_index(data, exc):
    with pytest.raises(exc):
        dataset.parse_index(data)


def test_keys_file():
    x = index_json()
    keys = "".join(json.dumps(s.pop("keys")) + "\n" for s in x["shards"]).encode()
    import hashlib

    x["keys_file"] = {"file": "keys.jsonl", "bytes": len(keys), "sha256": hashlib.sha256(keys).hexdigest()}
    y = dataset.parse_index(json.dumps(x).encode())
    dataset.read_keys(y, keys)
    assert y["shards"][2]["keys"] == ["golden#6", "golden#7"]
    for damaged in (keys[:-1], keys.replace(b"golden#6", b"golden#5")):
        y = dataset.parse_index(json.dumps(x).encode())
        with pytest.raises(ntcb.CorruptError):
            dataset.read_keys(y, damaged)


# -- remote reads --------------------------------------------------------------


def test_dataset_over_http(golden_copy, server):
    local = ntcb.open(golden_copy)
    for url in (server.url + "/ds", server.url + "/ds/", server.url + "/ds/index.json"):
        ds = ntcb.open(url)
        assert isinstance(ds, ntcb.Dataset) and ds.keys() == local.keys()
        for i in (6, 1, 6):
            np.testing.assert_array_equal(ds[i], local[i])
        ds.verify()
    # One shard by its URL finds its model through the dataset beside it.
    with ntcb.open(server.url + "/ds/shard-00002.ntcb") as r:
        np.testing.assert_array_equal(r[1], local[7])


def test_http_retries_and_checks(golden_copy, server):
    def flaky(h, n):
        if n % 2 == 0:
            h.send_response(503)
            h.send_header("Retry-After", "0")
            h.send_header("Content-Length", "0")
            h.end_headers()
            return True
        return False

    server.fail = flaky
    f = _remote.HTTPFile(server.url + "/ds/shard-00000.ntcb", block_size=512, min_backoff=0.001, max_backoff=0.004)
    data = open(os.path.join(golden_copy, "shard-00000.ntcb"), "rb").read()
    assert f.size == len(data)
    assert f.read_at(len(data), 0) == data
    assert f.stats["retries"] > 0
    server.fail = None
    with pytest.raises(ntcb.NotFound):
        _remote.HTTPFile(server.url + "/ds/nope.ntcb")

    def lying(h, n):  # the wrong range
        h.send_response(206)
        h.send_header("Content-Range", f"bytes 1-512/{len(data)}")
        h.send_header("Content-Length", "512")
        h.end_headers()
        h.wfile.write(data[1:513])
        return True

    server.fail = lying
    f._blocks.clear()
    with pytest.raises(_remote.RemoteError):
        f.read_at(10, 0)

    def cut(h, n):  # a body cut short, then honest answers
        if n == 1:
            h.send_response(206)
            h.send_header("Content-Range", f"bytes 0-511/{len(data)}")
            h.send_header("Content-Length", "512")
            h.end_headers()
            h.wfile.write(data[:100])
            h.close_connection = True
            return True
        return False

    server.reset()
    server.fail = cut
    f._blocks.clear()
    assert f.read_at(512, 0) == data[:512]


def test_fsspec_memory(golden_copy):
    fsspec = pytest.importorskip("fsspec")
    fs = fsspec.filesystem("memory")
    for name in os.listdir(golden_copy):
        with open(os.path.join(golden_copy, name), "rb") as src, fs.open(f"/ntcbtest/{name}", "wb") as dst:
            dst.write(src.read())
    local = ntcb.open(golden_copy)
    ds = ntcb.open("memory://ntcbtest")
    np.testing.assert_array_equal(ds[3], local[3])
    with ntcb.open("memory://ntcbtest/shard-00000.ntcb") as r:
        np.testing.assert_array_equal(r[2], local[2])


# -- datasets the current ntc writes -------------------------------------------


def test_http_reads_few_bytes(ntc_bin, tmp_path, server):
    """ntcb.open("http://127.0.0.1:PORT/DIR") reads random samples identical to
    the local dataset's, and a few of them fetch well under half of its
    bytes. The dataset: the 48 embedded real samples in shards of 2, fp16
    (lossless, so Python decodes it exactly and fast)."""
    if not os.path.exists(SAMPLE48):
        pytest.skip("no embedded sample")
    d = tmp_path / "big"
    subprocess.run([ntc_bin, "encode", SAMPLE48, "-o", str(d), "-q", "--shard-samples", "2", "--codec", "fp16"], check=True)
    total = sum(os.path.getsize(d / n) for n in os.listdir(d))
    local = ntcb.open(str(d))
    server.reset()
    remote = ntcb.open(server.url + "/big")
    pick = random.Random(1)
    for _ in range(4):
        i = pick.randrange(len(local))
        np.testing.assert_array_equal(remote[i], local[i])
    print(f"4 random samples of 48 fetched {server.served} of {total} bytes ({100 * server.served / total:.1f}%) "
          f"in {server.requests} requests")
    assert server.served < total / 4


def test_torch_dataset_over_http(golden_copy, server):
    torch = pytest.importorskip("torch")
    from ntcb.torch_data import ChunkShuffleSampler, NtcbDataset

    local = ntcb.open(golden_copy)
    for src in (server.url + "/ds", ntcb.open(server.url + "/ds"), golden_copy):
        ds = NtcbDataset(src)
        assert len(ds) == 8 and [list(c) for c in ds.chunks()] == [[0, 1, 2], [3, 4, 5], [6, 7]]
        loader = torch.utils.data.DataLoader(ds, batch_size=3, num_workers=2, sampler=ChunkShuffleSampler(ds, seed=1),
                                             multiprocessing_context="forkserver")
        seen = []
        for batch in loader:
            for k, i, t in zip(batch["key"], batch["index"].tolist(), batch["tokens"]):
                assert k == local.key(i)
                np.testing.assert_array_equal(t.numpy(), local[i])
                seen.append(i)
        assert sorted(seen) == list(range(8))


def test_index_byte_flips():
    """Every single-byte change of the golden index.json either still parses
    (a valid index) or raises an NtcbError: never another exception."""
    data = open(os.path.join(DATASET, "index.json"), "rb").read()
    for i in range(len(data)):
        for x in (0x01, 0x20, 0x80):
            b = bytearray(data)
            b[i] ^= x
            try:
                dataset.parse_index(bytes(b))
            except ntcb.NtcbError:
                pass


def test_http_hostile_answers(golden_copy, server):
    """Random statuses, headers and bodies from the server: HTTPFile raises
    an NtcbError or returns as many bytes as asked, never anything else
    (that they are the right bytes is for the container's CRCs to say)."""
    data = open(os.path.join(golden_copy, "shard-00000.ntcb"), "rb").read()
    rnd = random.Random(7)

    def hostile(h, n):
        if rnd.random() < 0.3:
            return False
        status = rnd.choice([200, 206, 206, 404, 416, 429, 500, 412])
        h.send_response(status)
        a = rnd.randrange(len(data))
        b = rnd.randrange(a, len(data) + 3)
        cr = rnd.choice([f"bytes {a}-{b}/{len(data)}", f"bytes {a}-{b}/*", "bytes */0", "junk", f"bytes {b}-{a}/{len(data)}"])
        h.send_header("Content-Range", cr)
        body = rnd.choice([data[a : b + 1], b"", data[a:], os.urandom(rnd.randrange(100))])
        h.send_header("Content-Length", str(len(body) if rnd.random() < 0.8 else rnd.randrange(2000)))
        if rnd.random() < 0.5:
            h.send_header("ETag", rnd.choice(['"v1"', '"v2"']))
        h.end_headers()
        try:
            h.wfile.write(body)
        except OSError:
            pass
        h.close_connection = True
        return True

    server.fail = hostile
    for _ in range(60):
        try:
            f = _remote.HTTPFile(server.url + "/ds/shard-00000.ntcb", block_size=512, retries=2, min_backoff=0.0001, max_backoff=0.0002, timeout=2)
            off = rnd.randrange(len(data))
            n = rnd.randrange(1, 1200)
            if off + n <= f.size:
                assert len(f.read_at(n, off)) == n
        except ntcb.NtcbError:
            pass
