#!/usr/bin/env python3
"""Samples per second of the ways a PyTorch user reads precomputed tokens:
np.load with mmap of the float16 .npy, safetensors (when the module is
installed), .ntcb int8 and .ntcb ntc at 8x through python/ntcb, each
sequential (r[i] in order), random (r[i] in a shuffled order) and through a
torch DataLoader with 0 and 2 workers; and the Go CLI decoding the same
.ntcb files (ntc decode --dtype float32), for the per-core comparison.

Every reader returns float32 [tokens, dim] (the .npy and safetensors rows
are cast, as a training loop would). The sequential, random and CLI rows
run on one core (the process is pinned to one CPU before anything is
loaded, and the CLI runs with GOMAXPROCS=1 under the same pin), and report
samples per second of CPU time as well as of wall time: on a shared machine
CPU time is the steadier measure. The DataLoader rows use every core.

    PYTHONPATH=python python3 scripts/loader_bench.py                 # the shared block-10 tokens
    PYTHONPATH=python python3 scripts/loader_bench.py tokens.npy --rounds 5 --json out.json

Needs the ntc command (built with go build when --ntc is not given) and,
for the DataLoader rows, torch. The decoder is python/ntcb's default
(NTCB_DECODER): native when libntcb.so is built (scripts/build-python.sh).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import resource
import subprocess
import sys
import tempfile
import time

import numpy as np

ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
DEFAULT_NPY = os.path.join(ROOT, "..", "shared", "data", "tokens", "deit_tiny_block10_dev.npy")


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def timed(fn):
    """Runs fn() and returns (wall seconds, CPU seconds of this process)."""
    w0, c0 = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - w0, time.process_time() - c0


class Npy:
    name = "npy fp16 mmap"

    def __init__(self, path):
        self.path = path
        self.a = np.load(path, mmap_mode="r")

    def __len__(self):
        return len(self.a)

    def __getitem__(self, i):
        return np.asarray(self.a[i], dtype=np.float32)

    def __getstate__(self):  # workers map the file themselves
        return {"path": self.path}

    def __setstate__(self, s):
        self.__init__(s["path"])


class Safetensors:
    name = "safetensors fp16"

    def __init__(self, path):
        from safetensors import safe_open

        self.path = path
        self.f = safe_open(path, framework="numpy")
        self.key = next(iter(self.f.keys()))
        self.s = self.f.get_slice(self.key)
        self.n = self.s.get_shape()[0]

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        return np.asarray(self.s[i : i + 1][0], dtype=np.float32)


class Ntcb:
    def __init__(self, path, name):
        import ntcb

        self.path, self.name = path, name
        self.r = ntcb.open(path)

    def __len__(self):
        return len(self.r)

    def __getitem__(self, i):
        return self.r[i]

    def __getstate__(self):
        return {"path": self.path, "name": self.name}

    def __setstate__(self, s):
        self.__init__(s["path"], s["name"])


def bench_reader(rd, order, rounds):
    """Best of rounds: (samples/s wall, samples/s CPU) reading rd[i] for i in order."""
    def run():
        for i in order:
            rd[i]

    best = (0.0, 0.0)
    for _ in range(rounds):
        w, c = timed(run)
        best = (max(best[0], len(order) / w), max(best[1], len(order) / max(c, 1e-9)))
    return best


class LoaderDataset:
    """A torch Dataset of epochs passes over a reader (module level: the
    forkserver workers unpickle it)."""

    def __init__(self, rd, epochs):
        self.rd, self.epochs = rd, epochs

    def __len__(self):
        return len(self.rd) * self.epochs

    def __getitem__(self, i):
        import torch

        return torch.from_numpy(self.rd[i % len(self.rd)])


def bench_loader(rd, workers, batch, epochs):
    """samples/s through a DataLoader after its first batch, and the seconds
    to that first batch (worker start); workers start with forkserver (this
    process has loaded the native decoder: a forked worker could not call
    it)."""
    import torch

    ctx = "forkserver" if workers else None
    dl = torch.utils.data.DataLoader(LoaderDataset(rd, epochs), batch_size=batch, num_workers=workers, shuffle=False,
                                     multiprocessing_context=ctx)
    t0 = time.perf_counter()
    it = iter(dl)
    first = len(next(it))
    t1 = time.perf_counter()
    n = sum(len(b) for b in it)
    return n / (time.perf_counter() - t1), t1 - t0 if first else 0.0


def bench_threads(rd, threads, rounds):
    """Best of rounds: samples/s (wall) of threads threads sharing rd, each
    reading its share of the samples in order."""
    import threading

    n = len(rd)

    def work(t):
        for i in range(t, n, threads):
            rd[i]

    best = 0.0
    for _ in range(rounds):
        ts = [threading.Thread(target=work, args=(t,)) for t in range(threads)]
        t0 = time.perf_counter()
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        best = max(best, n / (time.perf_counter() - t0))
    return best


def go_decode(ntc, path, out, rounds, cpu):
    """Best of rounds: samples/s (wall, CPU) of ntc decode on one core."""
    import ntcb

    n = len(ntcb.open(path, decoder="python"))
    env = dict(os.environ, GOMAXPROCS="1")
    best = (0.0, 0.0)
    for _ in range(rounds):
        r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        subprocess.run(["taskset", "-c", str(cpu), ntc, "decode", path, "-o", out, "-q", "--dtype", "float32", "--force"],
                       check=True, env=env)
        w = time.perf_counter() - t0
        r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        c = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
        best = (max(best[0], n / w), max(best[1], n / max(c, 1e-9)))
    return best


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("npy", nargs="?", default=DEFAULT_NPY, help="float16 tokens [N, T, D] (default: the shared block-10 tokens)")
    ap.add_argument("--repeat", type=int, default=4,
                    help="tile the input this many times (default 4), so that the CLI's start-up counts little")
    ap.add_argument("--ntc", help="the ntc command (default: go build into a temporary folder)")
    ap.add_argument("--rounds", type=int, default=3, help="runs of each one-core measurement; the best counts (default 3)")
    ap.add_argument("--random", type=int, default=200, help="samples read in random order (default 200)")
    ap.add_argument("--batch", type=int, default=32, help="DataLoader batch size (default 32)")
    ap.add_argument("--epochs", type=int, default=4, help="passes over the samples through each DataLoader (default 4)")
    ap.add_argument("--json", help="write the results here too")
    ap.add_argument("--threads-of", help=argparse.SUPPRESS)  # internal: the thread rows, on this .ntcb
    args = ap.parse_args()
    if args.threads_of:
        rd = Ntcb(args.threads_of, "threads")
        rd[0]
        print(json.dumps({k: bench_threads(rd, k, args.rounds) for k in (1, 2)}))
        return 0

    cpu = sorted(os.sched_getaffinity(0))[-1]
    cores = len(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {cpu})  # before the native decoder's Go runtime starts: it sizes itself to one CPU
    tmp = tempfile.mkdtemp(prefix="loader-bench-")
    ntc = args.ntc
    if ntc is None:
        ntc = os.path.join(tmp, "ntc")
        subprocess.run(["go", "build", "-o", ntc, "./cmd/ntc"], cwd=ROOT, check=True,
                       env=dict(os.environ, GOFLAGS="-buildvcs=false"))
    given = src = args.npy
    if args.repeat > 1:
        src = os.path.join(tmp, "tokens.npy")
        np.save(src, np.concatenate([np.load(args.npy)] * args.repeat))
    args.npy = src
    files = {}
    for name, flags in [("ntcb int8", ["--codec", "int8"]), ("ntcb ntc 8x", ["--ratio", "8"])]:
        p = os.path.join(tmp, name.split()[1] + ".ntcb")
        subprocess.run([ntc, "encode", args.npy, "-o", p, "-q", *flags], check=True)
        files[name] = p
    readers = [Npy(args.npy)]
    try:
        from safetensors.numpy import save_file

        st = os.path.join(tmp, "tokens.safetensors")
        save_file({"tokens": np.load(args.npy)}, st)
        readers.append(Safetensors(st))
    except ImportError:
        print("safetensors: not installed, skipped", file=sys.stderr)
    readers += [Ntcb(p, n) for n, p in files.items()]
    import ntcb

    decoder = ntcb.open(files["ntcb int8"]).decoder
    n = len(readers[0])
    rng = random.Random(0)
    rand = [rng.randrange(n) for _ in range(args.random)]
    rows = []
    for rd in readers:
        rd[0]  # open, load and warm the page cache
        seq = bench_reader(rd, range(n), args.rounds)
        rnd = bench_reader(rd, rand, args.rounds)
        row = {"reader": rd.name, "seq_wall": seq[0], "seq_cpu": seq[1], "random_wall": rnd[0], "random_cpu": rnd[1],
               "bytes": os.path.getsize(getattr(rd, "path", args.npy))}
        rows.append(row)
    os.sched_setaffinity(0, set(range(os.cpu_count())))
    # In a fresh process: this one's Go runtime was sized to the one CPU it
    # was pinned to (GOMAXPROCS 1), which serialises calls from threads.
    out = subprocess.run([sys.executable, __file__, "--threads-of", files["ntcb ntc 8x"], "--rounds", str(args.rounds)],
                         check=True, capture_output=True, text=True).stdout
    threads = {int(k): v for k, v in json.loads(out.strip().splitlines()[-1]).items()}
    try:
        import torch  # noqa: F401

        for rd, row in zip(readers, rows):
            for w in (0, 2):
                row[f"loader{w}"], row[f"loader{w}_start_s"] = bench_loader(rd, w, args.batch, args.epochs)
    except ImportError:
        print("torch: not installed, no DataLoader rows", file=sys.stderr)
    go = {}
    for name, p in files.items():
        go[name] = go_decode(ntc, p, os.path.join(tmp, "out.npy"), args.rounds, cpu)

    print(f"\n{n} samples of {readers[0].a.shape[1]}x{readers[0].a.shape[2]} ({args.repeat} x {os.path.basename(given)}); "
          f"{cpu_name()}, {cores} cores; python/ntcb decoder: {decoder}; best of {args.rounds}")
    print("samples/s; seq and random on one core (wall / CPU time), DataLoader batch "
          f"{args.batch}, {args.epochs} epochs, on all cores (wall, after the first batch; workers by forkserver)\n")
    print("| reader | file MB | seq | random | random/seq cost | DataLoader 0 workers | DataLoader 2 workers |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for r in rows:
        cost = r["seq_cpu"] / r["random_cpu"]
        r["random_cost"] = cost
        l0 = f"{r['loader0']:.0f}" if "loader0" in r else "-"
        l2 = f"{r['loader2']:.0f} (start {r['loader2_start_s']:.1f} s)" if "loader2" in r else "-"
        print(f"| {r['reader']} | {r['bytes'] / 1e6:.1f} | {r['seq_wall']:.0f} / {r['seq_cpu']:.0f} | "
              f"{r['random_wall']:.0f} / {r['random_cpu']:.0f} | {cost:.2f}x | {l0} | {l2} |")
    for name, (w, c) in go.items():
        py = next(r for r in rows if r["reader"] == name)
        print(f"| Go CLI `ntc decode` {name.split(' ', 1)[1]} (GOMAXPROCS=1) | | {w:.0f} / {c:.0f} | | | | |")
        print(f"  python/ntcb {name} per core against the CLI: {py['seq_cpu'] / c:.2f}x (CPU time), "
              f"{py['seq_wall'] / w:.2f}x (wall)")
    print(f"\nntcb ntc 8x, one reader shared by threads, all cores (wall): "
          + ", ".join(f"{k} thread{'s' if k > 1 else ''} {v:.0f} samples/s" for k, v in threads.items())
          + f" ({threads[2] / threads[1]:.2f}x)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"rows": rows, "go": go, "threads": threads, "cpu": cpu_name(), "decoder": decoder, "samples": n, "input": given,
                   "repeat": args.repeat}, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
