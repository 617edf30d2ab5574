"""The model file writer, the torch dataset and the helpers of scripts/dump_tokens.py."""

import importlib.util
import json
import os

import numpy as np
import pytest

import ntcb
from ntcb import container, model

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
GOLDEN = os.path.join(ROOT, "testdata", "golden")


def test_build_reads_back():
    meta = json.dumps({"format": "ntcm", "codec": "ntc"}).encode()
    data = container.build([(5, b"model bytes"), (7, b"")], meta)
    c = container.Container.from_bytes(data)
    assert c.read_model(5) == b"model bytes" and c.read_model(7) == b""
    assert bytes(c.metadata) == meta and c.chunks == [] and c.samples == []
    assert len(container.build([], b"")) == container.MIN_FILE_SIZE


def test_extract_model(tmp_path):
    src = os.path.join(GOLDEN, "ntc.ntcb")
    if not os.path.exists(src):
        pytest.skip("no ntc golden file")
    dst = str(tmp_path / "m.ntcm")
    model.extract(src, dst)
    c = container.Container(dst)
    m = json.loads(bytes(c.metadata))
    assert m["format"] == "ntcm" and m["codec"] == "ntc" and m["shape"][0] == 0
    assert c.read_model(5) == container.Container(src).read_model(5)
    # Not a data file, and a file without a model has nothing to extract.
    with pytest.raises(ntcb.CorruptError):
        ntcb.open(dst)
    with pytest.raises(ntcb.CorruptError):
        model.extract(os.path.join(GOLDEN, "int8.ntcb"), str(tmp_path / "x.ntcm"))


def test_torch_dataset():
    torch = pytest.importorskip("torch")
    from ntcb.torch_data import ChunkShuffleSampler, NtcbDataset

    paths = [os.path.join(GOLDEN, "int8.ntcb"), os.path.join(GOLDEN, "fp16.ntcb")]
    ds = NtcbDataset(paths)
    assert len(ds) == 6
    want = np.concatenate([np.load(p.replace(".ntcb", ".decoded.npy")) for p in paths])
    for i in range(6):
        item = ds[i]
        np.testing.assert_array_equal(item["tokens"].numpy(), want[i])
        assert item["index"] == i and item["key"] == f"golden#{i % 3}"
    s = ChunkShuffleSampler(ds, seed=1)
    order = list(s)
    assert sorted(order) == list(range(6)) and len(s) == 6
    assert [list(c) for c in ds.chunks()] == [[0, 1], [2], [3, 4], [5]]
    loader = torch.utils.data.DataLoader(ds, batch_size=2, sampler=s)
    n = sum(len(b["tokens"]) for b in loader)
    assert n == 6


def load_dump_tokens():
    spec = importlib.util.spec_from_file_location("dump_tokens", os.path.join(ROOT, "scripts", "dump_tokens.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_dump_tokens_shards(tmp_path):
    dt = load_dump_tokens()
    a = (np.arange(2 * 5 * 3, dtype=np.float32).reshape(2, 5, 3) / 7).astype(np.float16)
    p = str(tmp_path / "shard-00000.npy")
    dt.write_shard(p, a, "npy", {})
    np.testing.assert_array_equal(np.load(p), a)
    assert dt.shard_ok(p, "npy", 2, 5, 3) and not dt.shard_ok(p, "npy", 3, 5, 3)
    assert not dt.shard_ok(str(tmp_path / "none.npy"), "npy", 2, None, None)
    q = str(tmp_path / "shard-00000.safetensors")
    dt.write_shard(q, a, "safetensors", {"layer": -2})
    assert dt.shard_ok(q, "safetensors", 2, 5, 3)
    with open(q, "rb") as f:
        n = int.from_bytes(f.read(8), "little")
        h = json.loads(f.read(n))
        data = f.read()
    assert h["tokens"]["shape"] == [2, 5, 3] and h["__metadata__"]["layer"] == "-2"
    np.testing.assert_array_equal(np.frombuffer(data, np.float16).reshape(2, 5, 3), a)
    # A cut shard is not done.
    with open(p, "r+b") as f:
        f.truncate(os.path.getsize(p) - 1)
    assert not dt.shard_ok(p, "npy", 2, 5, 3)


def test_dump_tokens_lists_images(tmp_path):
    dt = load_dump_tokens()
    d = tmp_path / "imgs"
    (d / "sub").mkdir(parents=True)
    for n in ["b.png", "a.JPG", "sub/c.png", "notes.txt"]:
        (d / n).write_bytes(b"")
    assert dt.list_images([str(d)]) == [str(d / "a.JPG"), str(d / "b.png"), str(d / "sub" / "c.png")]
    lst = tmp_path / "list.txt"
    lst.write_text("imgs/b.png\n# comment\n\nimgs/a.JPG\n")
    assert dt.list_images(["@" + str(lst)]) == [str(tmp_path / "imgs/b.png"), str(tmp_path / "imgs/a.JPG")]
    assert dt.list_images([str(d / "*.png")]) == [str(d / "b.png")]
    with pytest.raises(dt.UsageError):
        dt.list_images([str(tmp_path / "missing")])


def test_model_file_option(tmp_path):
    """A file without its model block decodes with the model from a .ntcm file."""
    src = os.path.join(GOLDEN, "ntc.ntcb")
    if not os.path.exists(src) or "ntc" not in ntcb.codec_names():
        pytest.skip("no ntc golden file or port")
    m = str(tmp_path / "m.ntcm")
    model.extract(src, m)
    c = container.Container(src)
    # Rebuild the file without its model block, keeping everything else.
    import struct

    good = open(src, "rb").read()
    mi = c.models[0]
    cut = good[: mi.offset] + good[mi.offset + 12 + mi.length :]
    shift = 12 + mi.length
    b = bytearray(cut)
    io = c.index_offset - shift
    ip = io + 8
    n_models, n_chunks = struct.unpack_from("<II", b, ip)
    assert n_models == 1
    struct.pack_into("<I", b, ip, 0)
    model_size, chunk_size, _ = container.ENTRY_SIZES[c.version]
    entries = bytes(b[ip + 32 + model_size : ip + c.index_length])
    meta_off = c.meta_offset - (shift if c.meta_offset > mi.offset else 0)
    struct.pack_into("<Q", b, ip + 16, meta_off)
    for i in range(n_chunks):  # chunk entries follow the (removed) model entry
        at = chunk_size * i
        off = struct.unpack_from("<Q", entries, at)[0]
        entries = entries[:at] + struct.pack("<Q", off - shift if off > mi.offset else off) + entries[at + 8 :]
    index = bytes(b[ip : ip + 32]) + entries
    body = bytes(b[:io])
    blk = struct.pack("<BBHI", 4, 0, 0, len(index)) + index
    from ntcb._crc32c import crc32c

    blk += struct.pack("<I", crc32c(blk))
    footer = struct.pack("<QIHH", io, len(index), c.version, 0)
    data = body + blk + footer + struct.pack("<I", crc32c(footer)) + b"\x89NTCBEND"
    p = str(tmp_path / "nomodel.ntcb")
    open(p, "wb").write(data)
    with pytest.raises(ntcb.CorruptError):
        ntcb.open(p)[0]  # no model: the codec cannot load
    got = ntcb.open(p, model=m).read(range(8))
    np.testing.assert_allclose(got, np.load(os.path.join(GOLDEN, "ntc.decoded.npy")), atol=1e-4)
    with pytest.raises(ntcb.CorruptError):
        ntcb.open(p, model=os.path.join(GOLDEN, "int8.ntcb"))[0]  # not a model file
