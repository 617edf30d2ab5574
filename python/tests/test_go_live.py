"""The Python reader against the current Go code, on real tokens.

Builds cmd/ntc, encodes the embedded real sample (internal/sample, 8 x 197 x
192 DeiT-Tiny tokens) with every codec, decodes it with `ntc decode --dtype
float32` and with python/ntcb, and compares. Skipped where Go is not
installed (the golden-file tests still run); in CI it catches a codec whose
format changed without python/ntcb following.
"""

import os
import shutil
import subprocess

import numpy as np
import pytest

import ntcb
from ntcb import _ntc

ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
SAMPLE = os.path.join(ROOT, "internal", "sample", "deit_tiny_block10_8.npy")
GO = shutil.which("go") or ("/usr/local/go/bin/go" if os.path.exists("/usr/local/go/bin/go") else None)

pytestmark = pytest.mark.skipif(GO is None or not os.path.exists(SAMPLE), reason="needs the Go toolchain")


def go_codecs():
    """The registered Go codecs: pkg/ntcb's TestGoldenCodecs requires a golden file for each."""
    d = os.path.join(ROOT, "testdata", "golden")
    return sorted(f[: -len(".ntcb")] for f in os.listdir(d) if f.endswith(".ntcb"))


def test_every_go_codec_decodes_like_go(ntc_bin, tmp_path):
    names = go_codecs()
    assert "fp16" in names
    for name in names:
        f = str(tmp_path / f"{name}.ntcb")
        args = [ntc_bin, "encode", SAMPLE, "-o", f, "-q", "--codec", name, "--chunk-size", "200KiB"]
        if name == "ntc":
            args += ["--ratio", "8"]
        subprocess.run(args, check=True, cwd=tmp_path)
        ref = str(tmp_path / f"{name}.npy")
        subprocess.run([ntc_bin, "decode", f, "-o", ref, "-q", "--dtype", "float32"], check=True)
        want = np.load(ref)
        assert name in ntcb.codec_names(), f"python/ntcb cannot decode the Go codec {name!r}"
        with ntcb.open(f) as r:
            assert r.num_chunks > 1
            got = r.read(range(len(r)))
            # Keys are relative to the inputs' common directory.
            assert r.keys()[0] == os.path.basename(SAMPLE)[: -len(".npy")] + "#0"
        if name in ("fp16", "int8", "fp8", "int4"):
            np.testing.assert_array_equal(got.view(np.uint32), want.view(np.uint32), err_msg=name)
        else:
            rel = (np.abs(got - want).max(-1) / (np.linalg.norm(want, axis=-1) + 1e-6)).max()
            print(f"{name}: max |python - go| = {np.abs(got - want).max():.3g}, relative to the token norm {rel:.3g}")
            assert rel < 1e-3, name


def test_ntc_large_grid_decodes_like_go(ntc_bin, tmp_path):
    """A grid of several groups of 4x4 blocks, with edge blocks and edge
    groups (18x21 patches: 5x6 blocks in groups of 4x4, 4x2, 1x4 and 1x2),
    and outlier tokens. Its 30 blocks per sample are not a multiple of the
    4 blocks per slice of payload version 5: slices span two samples."""
    rng = np.random.default_rng(5)
    n, gh, gw, d = 6, 18, 21, 24
    yy, xx = np.meshgrid(np.arange(gh), np.arange(gw), indexing="ij")
    base = rng.normal(size=(d, 4))
    field = np.stack([np.sin(yy / 3 + p) * np.cos(xx / 4 - p) for p in range(4)], -1)  # [gh, gw, 4]
    grid = field.reshape(1, gh * gw, 4) @ base.T + 0.3 * rng.normal(size=(n, gh * gw, d))
    cls = rng.normal(size=(n, 1, d)) * 3
    x = np.concatenate([cls, grid], axis=1)
    x[np.arange(n), 1 + rng.integers(0, gh * gw, n)] *= 40  # far-out tokens: coded as outliers
    x = x.astype(np.float16)
    src = str(tmp_path / "big.npy")
    np.save(src, x)
    f = str(tmp_path / "big.ntcb")
    subprocess.run([ntc_bin, "encode", src, "-o", f, "-q", "--codec", "ntc", "--ratio", "6", "--grid", f"{gh}x{gw}",
                    "--chunk-size", "40KiB"], check=True)
    ref = str(tmp_path / "big.dec.npy")
    subprocess.run([ntc_bin, "decode", f, "-o", ref, "-q", "--dtype", "float32"], check=True)
    want = np.load(ref)
    with ntcb.open(f) as r:
        assert r.layout.grid_h == gh and r.layout.grid_w == gw and r.num_chunks > 1
        got = r.read(range(len(r)))
        dec = r._codec(5)
        assert {r._c.read_chunk(i)[0] for i in range(r.num_chunks)} == {_ntc.PAYLOAD_VERSION}
        outliers = sum(len(dec.decode_coefficients(r._c.read_chunk(i), r._c.chunks[i].count)["outliers"][0])
                       for i in range(r.num_chunks))
    assert outliers > 0
    rel = (np.abs(got - want).max(-1) / (np.linalg.norm(want, axis=-1) + 1e-6)).max()
    print(f"ntc 18x21 ({outliers} outlier tokens): max |python - go| = {np.abs(got - want).max():.3g}, "
          f"relative to the token norm {rel:.3g}")
    assert rel < 1e-3
    try:
        import torch  # noqa: F401
    except ImportError:
        return
    with ntcb.open(f) as r:
        t = r.read_torch(range(len(r)), device="cpu").numpy()
    assert (np.abs(t - want).max(-1) / (np.linalg.norm(want, axis=-1) + 1e-6)).max() < 1e-3
