"""scripts/encode_dataset.py: a dataset from token shards on Dask distributed
(and without it), resumed, in array shares, and through a worker killed in
the middle of the run. Needs the Go toolchain (to build ntc); the Dask tests
need Debian's python3-distributed."""

import importlib.util
import json
import os
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

import ntcb

ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
SCRIPT = os.path.join(ROOT, "scripts", "encode_dataset.py")
SAMPLE48 = os.path.join(ROOT, "internal", "sample", "deit_tiny_block10_48.npy")


def load_script():
    spec = importlib.util.spec_from_file_location("encode_dataset", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    sys.modules["encode_dataset"] = mod
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def shards(tmp_path_factory, ntc_bin):
    """12 token shards of 4 real samples and a model fitted on them."""
    if not os.path.exists(SAMPLE48):
        pytest.skip("no embedded sample")
    d = tmp_path_factory.mktemp("tokens")
    a = np.load(SAMPLE48)
    for i in range(12):
        np.save(d / f"shard-{i:05d}.npy", a[4 * i : 4 * i + 4])
    model = str(d.parent / "m.ntcm")
    subprocess.run([ntc_bin, "fit", str(d / "*.npy"), "-o", model, "-q", "--ratio", "8", "--shard-samples", "4"], check=True)
    return str(d), model


def run(args, **kw):
    return subprocess.run([sys.executable, SCRIPT, *args], capture_output=True, text=True, **kw)


def check_dataset(ntc_bin, out, n_shards=12, n_samples=48):
    """Every shard present once, verified, and the index lists exactly them."""
    subprocess.run([ntc_bin, "verify", "-q", out], check=True)
    with open(os.path.join(out, "index.json")) as f:
        idx = json.load(f)
    names = [s["file"] for s in idx["shards"]]
    assert names == [f"shard-{i:05d}.ntcb" for i in range(n_shards)]
    assert idx["samples"] == n_samples and len(idx["models"]) == 1
    assert sorted(f for f in os.listdir(out) if f.endswith(".ntcb")) == names
    assert not [f for f in os.listdir(out) if "tmp" in f], os.listdir(out)
    ds = ntcb.open(out)
    assert len(ds) == n_samples and len(set(ds.keys())) == n_samples
    return ds


def test_help():
    p = run(["--help"])
    assert p.returncode == 0 and "--dask" in p.stdout and "--shard-index" in p.stdout and p.stderr == ""


def test_wrapper_help():
    """scripts/encode_dataset.sh is a thin wrapper now; at 93ab9db its --help
    printed a stray line and exited 2."""
    p = subprocess.run(["bash", os.path.join(ROOT, "scripts", "encode_dataset.sh"), "--help"], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    assert p.stderr == "" and p.stdout.startswith("usage: encode_dataset")


def test_without_dask(ntc_bin, shards, tmp_path):
    tokens, model = shards
    out = str(tmp_path / "ds")
    p = run([os.path.join(tokens, "*.npy"), "-o", out, "--model", model, "--dask", "none", "--jobs", "2", "--ntc", ntc_bin])
    assert p.returncode == 0, p.stderr
    ds = check_dataset(ntc_bin, out)
    assert ds.keys()[:2] == ["shard-00000#0", "shard-00000#1"]
    a = np.load(SAMPLE48)
    got = ds.read([0, 47])
    cos = (got * a[[0, 47]]).sum(-1) / np.linalg.norm(got, axis=-1) / np.linalg.norm(a[[0, 47]].astype(np.float32), axis=-1)
    assert cos.mean() > 0.95
    # Run again: every shard is there and verifies, nothing is encoded.
    before = {f: os.stat(os.path.join(out, f)).st_mtime_ns for f in os.listdir(out) if f.endswith(".ntcb")}
    p = run([os.path.join(tokens, "*.npy"), "-o", out, "--model", model, "--dask", "none", "--ntc", ntc_bin])
    assert p.returncode == 0 and "0 shards encoded, 12 there already" in p.stderr, p.stderr
    assert before == {f: os.stat(os.path.join(out, f)).st_mtime_ns for f in before}
    # A changed input is encoded again, alone.
    os.utime(os.path.join(tokens, "shard-00005.npy"))
    p = run([os.path.join(tokens, "*.npy"), "-o", out, "--model", model, "--dask", "none", "--ntc", ntc_bin])
    assert "1 shards encoded, 11 there already" in p.stderr, p.stderr
    check_dataset(ntc_bin, out)


def test_array_shares(ntc_bin, shards, tmp_path):
    tokens, model = shards
    out = str(tmp_path / "ds")
    base = [os.path.join(tokens, "*.npy"), "-o", out, "--model", model, "--ntc", ntc_bin, "--shard-count", "3"]
    p = run(base + ["--shard-index", "0"])
    assert p.returncode == 0 and not os.path.exists(os.path.join(out, "index.json")), p.stderr
    assert "waits for the others" in p.stderr
    p = run(base, env=dict(os.environ, SLURM_ARRAY_TASK_ID="2"))
    assert p.returncode == 0 and not os.path.exists(os.path.join(out, "index.json")), p.stderr
    p = run(base, env=dict(os.environ, JOB_COMPLETION_INDEX="1"))
    assert p.returncode == 0, p.stderr
    check_dataset(ntc_bin, out)


def test_dask_local(ntc_bin, shards, tmp_path):
    """The issue's command: scripts/encode_dataset.py 'shards/*.npy' -o DIR --model M.ntcm --dask local:2."""
    pytest.importorskip("distributed")
    tokens, model = shards
    out = str(tmp_path / "ds")
    p = run([os.path.join(tokens, "*.npy"), "-o", out, "--model", model, "--dask", "local:2", "--ntc", ntc_bin], timeout=300)
    assert p.returncode == 0, p.stderr
    check_dataset(ntc_bin, out)


def test_worker_killed_mid_run(ntc_bin, shards, tmp_path):
    """A worker is killed while shards are being encoded: the run still
    completes, with every shard present, verified and in the index once."""
    distributed = pytest.importorskip("distributed")
    tokens, model = shards
    # A slow ntc, so that the kill lands in the middle of the run.
    slow = tmp_path / "slow-ntc"
    slow.write_text(f'#!/bin/sh\n[ "$1" = encode ] && sleep 1\nexec {ntc_bin} "$@"\n')
    slow.chmod(0o755)
    out = str(tmp_path / "ds")
    mod = load_script()
    import logging

    import cloudpickle

    cloudpickle.register_pickle_by_value(mod)
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                                       silence_logs=logging.ERROR)
    client = distributed.Client(cluster)
    try:
        rc = []
        t = threading.Thread(target=lambda: rc.append(mod.main(
            [os.path.join(tokens, "*.npy"), "-o", out, "--model", model, "--ntc", str(slow), "-q"], client=client)))
        t.start()
        deadline = time.time() + 120
        while time.time() < deadline and not [f for f in os.listdir(out) if f.endswith(".ntcb")] if os.path.isdir(out) else True:
            time.sleep(0.05)
        present = [f for f in os.listdir(out) if f.endswith(".ntcb")]
        assert 0 < len(present) < 12, "the kill must come in the middle of the run"
        print(f"killing a worker with {len(present)} of 12 shards written")
        pids = client.run(os.getpid)
        victim = sorted(pids.values())[0]
        os.kill(victim, signal.SIGKILL)
        t.join(300)
        assert not t.is_alive() and rc == [0]
        with pytest.raises(ProcessLookupError):
            os.kill(victim, 0)
        check_dataset(ntc_bin, out)
    finally:
        client.close()
        cluster.close()
