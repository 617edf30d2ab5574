"""scripts/vit_tail.py, task_metric.py and task_eval.py: the task metric and
the head evaluation. The numpy parts run everywhere; the torch parts skip
without torch, the real-data checks without ../shared/data."""

import importlib.util
import json
import os
import struct

import numpy as np
import pytest

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
SCRIPTS = os.path.join(ROOT, "scripts")
SHARED = os.path.join(ROOT, "..", "shared", "data")
WEIGHTS = os.path.join(SHARED, "models", "deit_tiny_patch16_224.safetensors")
BLOCK10 = os.path.join(SHARED, "tokens", "deit_tiny_block10_dev.npy")
FINAL = os.path.join(SHARED, "tokens", "deit_tiny_final_dev.npy")


def load(name):
    import sys

    if SCRIPTS not in sys.path:
        sys.path.insert(0, SCRIPTS)
    spec = importlib.util.spec_from_file_location(name, os.path.join(SCRIPTS, name + ".py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def write_safetensors(path, tensors):
    header, blobs, off = {}, [], 0
    for name, a in tensors.items():
        a = np.ascontiguousarray(a, dtype=np.float32)
        header[name] = {"dtype": "F32", "shape": list(a.shape), "data_offsets": [off, off + a.nbytes]}
        blobs.append(a.tobytes())
        off += a.nbytes
    h = json.dumps(header).encode()
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def tiny_vit(dim=8, depth=2, classes=5, seed=0):
    """A random state dict on timm's key names: depth pre-norm blocks, a
    final norm and a linear head."""
    r = np.random.default_rng(seed)
    sd = {}
    for i in range(depth):
        p = f"blocks.{i}."
        for n, shape in [("norm1.weight", (dim,)), ("norm1.bias", (dim,)), ("attn.qkv.weight", (3 * dim, dim)),
                         ("attn.qkv.bias", (3 * dim,)), ("attn.proj.weight", (dim, dim)), ("attn.proj.bias", (dim,)),
                         ("norm2.weight", (dim,)), ("norm2.bias", (dim,)), ("mlp.fc1.weight", (4 * dim, dim)),
                         ("mlp.fc1.bias", (4 * dim,)), ("mlp.fc2.weight", (dim, 4 * dim)), ("mlp.fc2.bias", (dim,))]:
            sd[p + n] = r.normal(0, 0.3, shape) + (1 if n.endswith("norm1.weight") or n.endswith("norm2.weight") else 0)
    sd["norm.weight"] = 1 + r.normal(0, 0.1, dim)
    sd["norm.bias"] = r.normal(0, 0.1, dim)
    sd["head.weight"] = r.normal(0, 1, (classes, dim))
    sd["head.bias"] = r.normal(0, 0.1, classes)
    return {k: np.asarray(v, dtype=np.float32) for k, v in sd.items()}


def test_read_safetensors_numpy(tmp_path):
    vt = load("vit_tail")
    p = str(tmp_path / "w.safetensors")
    write_safetensors(p, {"a": np.arange(6).reshape(2, 3), "b": np.ones(4)})
    got = vt.read_safetensors(p)
    np.testing.assert_array_equal(got["a"], np.arange(6).reshape(2, 3))
    assert list(vt.read_safetensors(p, ["b"])) == ["b"]
    with pytest.raises(vt.UsageError, match="no tensor 'c'"):
        vt.read_safetensors(p, ["c"])
    bad = str(tmp_path / "bad.safetensors")
    open(bad, "wb").write(struct.pack("<Q", 1 << 40) + b"{}")
    with pytest.raises(vt.UsageError, match="bad.safetensors: safetensors header"):
        vt.read_safetensors(bad)


def test_parse_samples():
    vt = load("vit_tail")
    assert vt.parse_samples("0-2,5", 8) == [0, 1, 2, 5]
    assert vt.parse_samples(None, 3) == [0, 1, 2]
    for spec in ("7-9", "x", "3-1"):
        with pytest.raises(vt.UsageError):
            vt.parse_samples(spec, 8)


def test_linear_metric(tmp_path):
    tm = load("task_metric")
    w = np.random.default_rng(1).normal(size=(5, 4)).astype(np.float32)
    p = str(tmp_path / "proj.safetensors")
    write_safetensors(p, {"layer.weight": w})
    out = str(tmp_path / "m.npy")
    assert tm.main(["linear", p + ":layer.weight", "-o", out, "-q"]) == 0
    M = np.load(out)
    np.testing.assert_allclose(M, w.T.astype(np.float64) @ w, rtol=1e-12)
    info = json.load(open(str(tmp_path / "m.json")))
    assert info["kind"] == "linear" and info["dim"] == 4 and len(info["sha256"]) == 64
    assert tm.main(["linear", p + ":nope", "-o", out, "-q"]) == 2
    assert tm.main(["linear", p + ":layer.weight", "-o", str(tmp_path / "m.txt"), "-q"]) == 2


def test_waterfill_noise():
    tm = load("task_metric")
    r = np.random.default_rng(2)
    x = (r.normal(size=(20, 11, 6)) * np.array([5, 3, 1, 0.5, 0.1, 0.01])).astype(np.float32)
    L = tm.waterfill_noise(x, 1, 10.0)
    g = x[:, 1:].reshape(-1, 6).astype(np.float64)
    total = np.trace(np.cov(g, rowvar=False))
    assert abs(10 * np.log10(total / np.trace(L @ L.T)) - 10) < 1e-6


def test_fisher_metric_tiny_model(tmp_path):
    torch = pytest.importorskip("torch")
    vt, tm = load("vit_tail"), load("task_metric")
    sd = tiny_vit()
    tail = vt.BuiltinTail(sd, 1, heads=2)
    x = np.random.default_rng(3).normal(size=(6, 5, 8)).astype(np.float32)
    M = tm.fisher_metric(tail, x, prefix=1, draws=3, batch=4, seed=0)
    assert M.shape == (8, 8) and np.allclose(M, M.T)
    ev = np.linalg.eigvalsh(M)
    assert ev.min() > -1e-9 * ev.max() and ev.max() > 0
    # Block 1 starts with a LayerNorm and the residual path ends in one:
    # a shift of a token along (1, ..., 1) changes nothing, so the metric
    # ignores that direction.
    one = np.ones(8) / np.sqrt(8)
    assert one @ M @ one < 1e-6 * ev.max()
    # Deterministic for a seed and batch; the noisy
    # variant runs too.
    np.testing.assert_array_equal(M, tm.fisher_metric(tail, x, prefix=1, draws=3, batch=4, seed=0))
    assert tm.fisher_metric(tail, x, prefix=1, draws=2, seed=1, noise_snr=10).shape == (8, 8)
    # The command line: weights file in, .npy and .json out.
    w = str(tmp_path / "tiny.safetensors")
    write_safetensors(w, sd)
    xs = str(tmp_path / "x.npy")
    np.save(xs, x.astype(np.float16))
    out = str(tmp_path / "M.npy")
    assert tm.main(["fisher", xs, "--weights", w, "--start-block", "-1", "--heads", "2", "--samples", "0-3", "-o", out, "-q"]) == 0
    assert json.load(open(str(tmp_path / "M.json")))["n_samples"] == 4
    # --fields keeps every gradient: their outer products are M again.
    fp = str(tmp_path / "G.npy")
    assert tm.main(["fisher", xs, "--weights", w, "--start-block", "-1", "--heads", "2", "--draws", "3",
                    "-o", out, "--fields", fp, "-q"]) == 0
    G = np.load(fp)
    assert G.shape == (6 * 3, 4, 8)
    Mf = np.einsum("ftd,fte->de", G.astype(np.float64), G) / len(G)
    np.testing.assert_allclose(np.load(out), 0.5 * (Mf + Mf.T), rtol=1e-5, atol=1e-12)
    assert not [p for p in os.listdir(tmp_path) if ".tmp" in p]
    assert tm.main(["fisher", xs, "--weights", w, "--start-block", "7", "-o", out, "-q"]) == 2


def test_task_eval_identical(tmp_path, capsys):
    pytest.importorskip("torch")
    te = load("task_eval")
    sd = tiny_vit(seed=4)
    w = str(tmp_path / "tiny.safetensors")
    write_safetensors(w, sd)
    x = np.random.default_rng(5).normal(size=(6, 5, 8)).astype(np.float32)
    a, b = str(tmp_path / "a.npy"), str(tmp_path / "b.npy")
    np.save(a, x)
    np.save(b, x + 0.3 * np.random.default_rng(6).normal(size=x.shape).astype(np.float32))
    assert te.main([a, a, b, "--weights", w, "--start-block", "0", "--heads", "2", "--json"]) == 0
    res = json.loads(capsys.readouterr().out)["results"]
    assert res[a]["agree"] == 1 and abs(res[a]["kl"]) < 1e-12
    assert res[b]["kl"] > 0
    # A decoded subset matches the selected samples.
    np.save(b, x[2:4])
    assert te.main([a, b, "--weights", w, "--start-block", "0", "--heads", "2", "--samples", "2-3", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["results"][b]["agree"] == 1
    assert te.main([a, b, "--weights", w, "--start-block", "0", "--heads", "2"]) == 2


@pytest.mark.skipif(not (os.path.exists(WEIGHTS) and os.path.exists(BLOCK10) and os.path.exists(FINAL)),
                    reason="no shared DeiT-Tiny data")
def test_deit_tiny_tail_matches_final_layer():
    torch = pytest.importorskip("torch")
    vt = load("vit_tail")
    tail = vt.make_tail("builtin", WEIGHTS, 11)
    x, _ = vt.load_tokens(BLOCK10, "0-7")
    want, _ = vt.load_tokens(FINAL, "0-7")
    with torch.no_grad():
        got = tail.features(torch.tensor(x)).numpy()
    # The shared final-layer tokens are float16: equal to its rounding.
    assert np.abs(got - want).max() < 0.01


def test_proto_block_steps_parts():
    pb = load("proto_block_steps")
    # Step multipliers: quarter octaves, within the 4-bit codes, geometric
    # mean 1 per sample (to a rounding), finer where the weight is larger.
    w = np.array([[1.0, 4.0, 0.25, 1.0], [2.0, 2.0, 2.0, 2.0], [1e6, 1e-6, 1.0, 1.0]])
    m = pb.block_steps(w)
    codes = 4 * np.log2(m)
    assert np.allclose(codes, np.round(codes)) and codes.min() >= -8 and codes.max() <= 7
    assert np.abs(codes.mean(1)).max() <= 0.5
    assert m[0, 1] < m[0, 0] < m[0, 2] and np.allclose(m[1], 1)
    # The Laplacian code lengths are those of a distribution.
    q = np.arange(-200, 201)
    for s in (0.05, 1.0, 7.0):
        assert abs(np.exp2(-pb.laplace_bits(q, s)).sum() - 1) < 1e-6
    # The transform is orthonormal: a fine step reconstructs the grid.
    x = np.random.default_rng(7).normal(size=(5, 36, 8))
    c = pb.Coder(x, 6, 6)
    assert [b[2:] for b in c.blocks] == [(4, 4), (4, 2), (2, 4), (2, 2)]
    y, bits = c.code(np.arange(5), 1e-6, np.ones((5, 4)))
    np.testing.assert_allclose(y, x, atol=1e-5)
    y, bits = c.at_rate(np.arange(5), np.ones((5, 4)), 2 * x.size)
    assert 0.97 * 2 * x.size < bits <= 2 * x.size
    # Static class steps: fields that are constant over the grid (all their
    # energy in the DCs) make the DC steps finer than the AC ones, and with
    # blend 0 every multiplier is 1.
    g = np.broadcast_to(np.random.default_rng(8).normal(size=(3, 1, 8)), (3, 36, 8))
    st = c.class_steps(g, 0.7)
    assert [s.shape for s in st] == [(16, 8), (8, 8), (8, 8), (4, 8)]
    assert all(s[0].max() < s[1:].min() for s in st)
    assert all(np.all(s == 1) for s in c.class_steps(g, 0.0))


def test_proto_block_steps_tiny_model(tmp_path, capsys):
    pytest.importorskip("torch")
    pb = load("proto_block_steps")
    w = str(tmp_path / "tiny.safetensors")
    write_safetensors(w, tiny_vit(seed=8))
    r = np.random.default_rng(9)
    xs, gs = str(tmp_path / "x.npy"), str(tmp_path / "G.npy")
    np.save(xs, r.normal(size=(6, 37, 8)).astype(np.float16))
    np.save(gs, r.normal(size=(4 * 2, 36, 8)).astype(np.float32))
    args = [xs, gs, "--samples", "1-4", "--weights", w, "--start-block", "-1", "--heads", "2", "--rates", "2,1"]
    assert pb.main(args + ["--json"]) == 0
    out = json.loads(capsys.readouterr().out)["rates"]
    for rate in ("2.0", "1.0"):
        for arm in ("one step", "block steps", "class steps", "class + block steps"):
            a = out[rate][arm]
            assert 0.97 * float(rate) < a["bits_per_value"] <= float(rate) + 1e-9
            assert a["kl"] >= 0 and 0 <= a["agree"] <= 1
        assert "block_kl_change" in out[rate] and "block_kl_change_over_class" in out[rate]
    assert pb.main(args) == 0 and "KL change" in capsys.readouterr().out
    # Tables that ignore the block steps cost bits on the blocks they move.
    assert pb.main(args + ["--json", "--fixed-tables"]) == 0
    fixed = json.loads(capsys.readouterr().out)["rates"]
    assert fixed["1.0"]["one step"] == out["1.0"]["one step"]
    # Fields of other samples, a bad blend, a grid that is not square.
    assert pb.main([xs, gs, "--samples", "0-4", "--weights", w, "--start-block", "-1", "--heads", "2"]) == 2
    assert pb.main(args + ["--blend", "2"]) == 2
    assert pb.main(args + ["--prefix", "2"]) == 2
    assert pb.main(args + ["--class-fields", xs]) == 2
