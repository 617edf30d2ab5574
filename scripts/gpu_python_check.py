#!/usr/bin/env python3
"""The Python GPU path (read_torch(device="cuda") through libntcb_cuda.so)
on a GPU machine: correctness against the CPU decoder, then speed against
torch.from_numpy(np.load(fp16 .npy)).cuda() from the page cache, in one run.

On the build machine (Go, no GPU needed):

    scripts/build-python.sh --cuda
    python3 scripts/gpu_python_check.py prepare          # .gpu/py/: the files below

which writes .gpu/py/tokens.npy (the real block-10 tokens tiled 7 times,
float16, 1344 x 197 x 192, 102 MB) and .gpu/py/tokens_8x.ntcb (ntc at 8x,
about 13 MB). Only the .ntcb travels: the .npy is rebuilt on the device from
.gpu/py/block10.npy (14.5 MB). Then, with the device tool:

    run(command="LD_LIBRARY_PATH=/usr/local/cuda/targets/x86_64-linux/lib python3 scripts/gpu_python_check.py check --out $OUT",
        carry=["python/ntcb/libntcb.so", "python/ntcb/libntcb_cuda.so", ".gpu/py"], timeout_s=300)

It prints a table and writes $OUT/gpu_python.json. Exit status 1 when a
check fails (wrong values, or the GPU path not taken).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time

import numpy as np

ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
sys.path.insert(0, os.path.join(ROOT, "python"))
DIR = os.path.join(ROOT, ".gpu", "py")
REPEAT = 7


def prepare(args) -> None:
    os.makedirs(DIR, exist_ok=True)
    src = os.path.join(ROOT, "..", "shared", "data", "tokens", "deit_tiny_block10_dev.npy")
    shutil.copyfile(src, os.path.join(DIR, "block10.npy"))
    npy = os.path.join(DIR, "tokens.npy")
    np.save(npy, np.concatenate([np.load(src)] * REPEAT))
    ntc = os.path.join(ROOT, "bin", "ntc")
    subprocess.run(["go", "build", "-o", ntc, "./cmd/ntc"], cwd=ROOT, check=True)
    subprocess.run([ntc, "encode", npy, "-o", os.path.join(DIR, "tokens_8x.ntcb"), "--ratio", "8", "-q", "--force"],
                   check=True)
    os.remove(npy)  # rebuilt on the device from block10.npy
    print("prepared", sorted(os.listdir(DIR)))


def timed(fn, n=5):
    import torch

    ts = []
    for _ in range(n):
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        fn()
        torch.cuda.synchronize()
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts)


def check(args) -> int:
    import torch

    import ntcb
    from ntcb import _native

    torch.cuda.init()
    dev = torch.device("cuda", 0)
    res = {"device": torch.cuda.get_device_name(0), "torch": torch.__version__, "checks": {}, "speed": {}}
    ok = True
    path = os.path.join(DIR, "tokens_8x.ntcb")
    npy = os.path.join(DIR, "tokens.npy")
    if not os.path.exists(npy):
        np.save(npy, np.concatenate([np.load(os.path.join(DIR, "block10.npy"))] * REPEAT))
    files = [path] + [os.path.join(ROOT, "testdata", "golden", f"{c}.ntcb") for c in ("fp16", "int8", "fp8", "int4", "ntc")]
    for f in files:
        r = ntcb.open(f, decoder="native")
        idx = list(range(len(r)))[::-1][: min(len(r), 300)] + [0, 0]
        for tdt in (torch.float32, torch.float16):
            got = r.read_torch(idx, device=dev, dtype=tdt).float().cpu().numpy()
            want = r.read(idx).astype(np.float16 if tdt == torch.float16 else np.float32).astype(np.float32)
            rel = float((np.abs(got - want).max(-1) / (np.linalg.norm(want, axis=-1) + 1e-6)).max())
            good = rel < 1e-3 and np.isfinite(got).all()
            ok &= good
            res["checks"][f"{os.path.basename(f)} {str(tdt)[6:]}"] = {"max_rel_err": rel, "ok": bool(good)}
    res["gpu_path"] = _native.has_cuda()
    ok &= res["gpu_path"]
    r = ntcb.open(path, decoder="native")
    n = len(r)
    npy_bytes = os.path.getsize(npy)
    np.load(npy)  # into the page cache
    t_npy = timed(lambda: torch.from_numpy(np.load(npy)).cuda())
    t_ntcb = timed(lambda: r.read_torch(range(n), device=dev, dtype=torch.float16))
    t_ntcb32 = timed(lambda: r.read_torch(range(n), device=dev))
    rng = np.random.default_rng(0)
    rand = [int(i) for i in rng.integers(0, n, 64)]
    t_one_seq = timed(lambda: [r.read_torch([i], device=dev, dtype=torch.float16) for i in range(64)]) / 64
    t_one_rand = timed(lambda: [r.read_torch([i], device=dev, dtype=torch.float16) for i in rand]) / 64
    res["speed"] = {
        "samples": n, "npy_bytes": npy_bytes, "ntcb_bytes": os.path.getsize(path),
        "npy_cuda_s": t_npy, "read_torch_f16_s": t_ntcb, "read_torch_f32_s": t_ntcb32,
        "speedup_f16": t_npy / t_ntcb, "one_sample_seq_ms": 1e3 * t_one_seq, "one_sample_random_ms": 1e3 * t_one_rand,
    }
    print(f"{'check':40} {'max rel err':>12}  ok")
    for k, v in res["checks"].items():
        print(f"{k:40} {v['max_rel_err']:12.3g}  {v['ok']}")
    print(f"GPU path taken (libntcb_cuda.so): {res['gpu_path']}")
    s = res["speed"]
    print(f"\n{n} samples, fp16 .npy {npy_bytes / 1e6:.1f} MB, .ntcb {s['ntcb_bytes'] / 1e6:.1f} MB, on {res['device']}")
    print(f"torch.from_numpy(np.load(npy)).cuda(): {1e3 * t_npy:8.2f} ms  ({npy_bytes / t_npy / 1e9:.2f} GB/s)")
    print(f"read_torch(all, cuda, float16):         {1e3 * t_ntcb:8.2f} ms  ({npy_bytes / t_ntcb / 1e9:.2f} GB/s), "
          f"speedup {s['speedup_f16']:.2f}x")
    print(f"read_torch(all, cuda, float32):         {1e3 * t_ntcb32:8.2f} ms")
    print(f"one sample: sequential {s['one_sample_seq_ms']:.3f} ms, random {s['one_sample_random_ms']:.3f} ms")
    if args.out:
        with open(os.path.join(args.out, "gpu_python.json"), "w") as f:
            json.dump(res, f, indent=2)
    return 0 if ok else 1


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("prepare", help="write .gpu/py/ (on the build machine)")
    c = sub.add_parser("check", help="run on the GPU machine")
    c.add_argument("--out", default=os.environ.get("OUT"), help="folder for gpu_python.json")
    args = ap.parse_args()
    if args.cmd == "prepare":
        prepare(args)
        return 0
    return check(args)


if __name__ == "__main__":
    sys.exit(main())
