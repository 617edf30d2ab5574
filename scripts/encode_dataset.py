#!/usr/bin/env python3
"""Encode token shards into an ntc dataset, one task per shard, on Dask.

    scripts/encode_dataset.py 'tokens/*.npy' -o data/ --model clip-l.ntcm --dask local:8
    scripts/encode_dataset.py 'tokens/*.npy' -o data/ --ratio 8 --dask tcp://scheduler:8786
    scripts/encode_dataset.py 'tokens/*.npy' -o data/ --model m.ntcm --shard-index $SLURM_ARRAY_TASK_ID --shard-count 64

Every input file (.npy, .npz or .safetensors; globs and folders allowed) becomes one shard,
DIR/shard-00000.ntcb, ... (--files-per-shard groups consecutive files). The
steps:

1. The model, once: --model M.ntcm is copied to DIR/model.ntcm; without it a
   learned codec is fitted ('ntc fit') on --fit-shards inputs spread over the
   dataset (a model already in DIR is reused, so that a rerun resumes).
2. One task per shard, 'ntc encode INPUTS -o DIR/shard-K.ntcb --model
   DIR/model.ntcm' (the shard holds the model by reference) then 'ntc
   verify'. A task is pure and idempotent: the shard is written atomically,
   and it is skipped when it is already there, verifies, and was made from
   the same inputs (size and mtime), model and options (a digest kept in its
   metadata, source_digest). Tasks run on Dask distributed: --dask local:N
   starts a LocalCluster of N worker processes, --dask tcp://HOST:8786 uses a
   running cluster (dask-jobqueue for Slurm, dask-kubernetes: every worker
   needs ntc at the same path and the dataset's folder mounted), --dask none
   runs them here, --jobs at a time. A worker that dies takes its task with
   it, and Dask runs the task again elsewhere.
3. The index, last: 'ntc index DIR' verifies every shard and writes
   DIR/index.json, only when every shard of the plan is there.

--shard-index I --shard-count N runs share I of N of the tasks (shards I,
I+N, I+2N, ...) for array jobs (Slurm: SLURM_ARRAY_TASK_ID and
SLURM_ARRAY_TASK_COUNT; Kubernetes indexed Jobs: JOB_COMPLETION_INDEX and
--shard-count, both read when the flags are not given). The model must be
given (--model) or already in DIR. Whichever share finds every shard there
when it is done writes the index; --finalize writes it alone.

ntc is taken from --ntc PATH, else $NTC, else PATH. A manifest.jsonl next to
the inputs (scripts/dump_tokens.py) is copied to DIR with the shard of every
image ("ntcb"). Progress goes to stderr on a terminal.
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import glob
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time

TOKEN_EXTS = (".npy", ".npz", ".safetensors")
LEARNED = {"ntc"}
MODEL_NAME = "model.ntcm"


class Failure(Exception):
    """A step failed; the message says which and why."""


# -- the plan -------------------------------------------------------------------


def expand(args: list[str]) -> list[str]:
    """Input files: globs expanded, folders listed (token files, sorted), in order, without repeats."""
    out, seen = [], set()
    for a in args:
        if os.path.isdir(a):
            found = sorted(os.path.join(a, f) for f in os.listdir(a) if f.lower().endswith(TOKEN_EXTS))
        elif glob.has_magic(a):
            found = sorted(glob.glob(a))
        else:
            found = [a]
        if not found:
            raise Failure(f"{a}: no token files")
        for f in found:
            if not os.path.isfile(f):
                raise Failure(f"{f}: no such file")
            p = os.path.abspath(f)
            if p not in seen:
                seen.add(p)
                out.append(p)
    return out


def plan(inputs: list[str], per: int) -> list[dict]:
    """The shards: each a name and its input files."""
    return [{"name": f"shard-{k:05d}.ntcb", "inputs": inputs[i : i + per]} for k, i in enumerate(range(0, len(inputs), per))]


def digest(task: dict, model_sha: str, options: list[str]) -> str:
    """What a shard is made from: its inputs (path, size, mtime), the model and the options."""
    parts = [[p, os.stat(p).st_size, os.stat(p).st_mtime_ns] for p in task["inputs"]]
    blob = json.dumps({"inputs": parts, "model": model_sha, "options": options}, sort_keys=True).encode()
    return hashlib.sha256(blob).hexdigest()[:32]


def samples_in(path: str) -> int | None:
    """The samples of a token file, from its header (None if unknown)."""
    try:
        if path.endswith(".npy"):
            import numpy as np

            shape = np.load(path, mmap_mode="r").shape
        elif path.endswith(".safetensors"):
            with open(path, "rb") as f:
                n = int.from_bytes(f.read(8), "little")
                head = json.loads(f.read(min(n, 1 << 26)))
            shape = next(v["shape"] for k, v in head.items() if k != "__metadata__")
        else:
            return None
    except (OSError, ValueError, StopIteration, KeyError, ImportError):
        return None
    return shape[0] if len(shape) == 3 else 1


# -- running ntc -----------------------------------------------------------------


def _die_with_parent():  # pragma: no cover - runs in the child
    """An ntc started by a worker dies with the worker (Linux)."""
    try:
        import ctypes

        ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def run_ntc(ntc: str, args: list[str], what: str) -> str:
    p = subprocess.run([ntc, *args], capture_output=True, text=True, preexec_fn=_die_with_parent)
    if p.returncode != 0:
        raise Failure(f"{what}: ntc {args[0]} exited {p.returncode}: {p.stderr.strip() or p.stdout.strip()}")
    return p.stdout


def shard_ok(t: dict, out: str) -> bool:
    """Whether the shard at out is complete, made from what the task says, and verifies."""
    try:
        info = json.loads(run_ntc(t["ntc"], ["inspect", "--json", out], out))
        if (info.get("metadata", {}).get("meta") or {}).get("source_digest") != t["digest"]:
            return False
        run_ntc(t["ntc"], ["verify", "-q", out], out)
        return True
    except (Failure, ValueError):
        return False


def encode_shard(t: dict) -> dict:
    """One task: the shard t["name"] from its inputs, written atomically and
    verified, or left as it is when it is there already and verifies. Pure
    and idempotent: the same task always leaves the same shard."""
    out = os.path.join(t["dir"], t["name"])
    start = time.time()
    where = f"{socket.gethostname()}:{os.getpid()}"
    if os.path.exists(out) and shard_ok(t, out):
        return {"name": t["name"], "skipped": True, "seconds": time.time() - start, "worker": where}
    args = ["encode", *t["inputs"], "-o", out, "--force", "-q", "--key-root", t["key_root"],
            "--meta", f"source_digest={t['digest']}", "--workers", str(t["workers"])]
    args += ["--model", t["model"]] if t["model"] else ["--codec", t["codec"]]
    run_ntc(t["ntc"], args + t["extra"], out)
    run_ntc(t["ntc"], ["verify", "-q", out], out)
    return {"name": t["name"], "skipped": False, "seconds": time.time() - start, "worker": where}


# -- progress ------------------------------------------------------------------


class Progress:
    """A status line on stderr when it is a terminal; otherwise silent."""

    def __init__(self, total: int, quiet: bool):
        self.total, self.done, self.skipped = total, 0, 0
        self.start = time.time()
        self.live = not quiet and sys.stderr.isatty()

    def add(self, res: dict) -> None:
        self.done += 1
        self.skipped += res["skipped"]
        if self.live:
            el = time.time() - self.start
            left = el / max(1, self.done - self.skipped) * (self.total - self.done) if self.done > self.skipped else 0
            sys.stderr.write(f"\rencode_dataset: {self.done}/{self.total} shards ({self.skipped} there already), "
                             f"{el:.0f} s, about {left:.0f} s left   ")
            sys.stderr.flush()

    def end(self) -> None:
        if self.live:
            sys.stderr.write("\n")


def run_local(tasks: list[dict], jobs: int, prog: Progress) -> list[dict]:
    results = []
    with cf.ThreadPoolExecutor(max_workers=jobs) as ex:
        for f in cf.as_completed([ex.submit(encode_shard, t) for t in tasks]):
            res = f.result()
            results.append(res)
            prog.add(res)
    return results


def run_dask(tasks: list[dict], address: str, prog: Progress, retries: int, client=None) -> list[dict]:
    try:
        from distributed import Client, LocalCluster, as_completed
    except ImportError:
        raise Failure("--dask needs Dask distributed (Debian: python3-distributed; or --dask none)") from None
    cluster = None
    if client is None:
        if address.startswith("local:"):
            import logging

            n = int(address[len("local:"):])
            cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True, dashboard_address=None,
                                   silence_logs=logging.ERROR)
            client = Client(cluster)
        else:
            client = Client(address)
    try:
        keys = [f"encode-{t['name']}-{t['digest']}" for t in tasks]
        futures = client.map(encode_shard, tasks, key=keys, retries=retries, pure=False)
        results = []
        for f in as_completed(futures):
            try:
                res = f.result()
            except Exception as e:  # a task that failed for good, or KilledWorker
                raise Failure(f"{e}") from None
            results.append(res)
            prog.add(res)
        return results
    finally:
        if cluster is not None:
            client.close()
            cluster.close()


# -- the steps -------------------------------------------------------------------


def find_ntc(path: str | None) -> str:
    p = path or os.environ.get("NTC") or shutil.which("ntc")
    if not p:
        raise Failure("no ntc: give --ntc PATH, set NTC, or put ntc on PATH (go build -o ntc ./cmd/ntc)")
    p = shutil.which(p) or p
    if not (os.path.isfile(p) and os.access(p, os.X_OK)):
        raise Failure(f"{p}: not an executable ntc")
    return os.path.abspath(p)


def model_sha(path: str) -> str:
    """The SHA-256 of the model blob in a .ntcm file (what shards record)."""
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python"))
    from ntcb.container import Container

    c = Container(path)
    try:
        m = c.models[0]
        return hashlib.sha256(bytes(c.read_model(m.codec))).hexdigest()
    finally:
        c.close()


def prepare_model(args, ntc: str, inputs: list[str], key_root: str, log) -> str | None:
    """DIR/model.ntcm: a copy of --model, the model already there, or a fit."""
    dst = os.path.join(args.output, MODEL_NAME)
    if args.model:
        src = os.path.abspath(args.model)
        if os.path.exists(dst) and model_sha(dst) == model_sha(src):
            return dst
        if os.path.exists(dst) and not args.force:
            raise Failure(f"{dst} holds another model than {src}; its shards would not match (--force replaces it)")
        tmp = f"{dst}.tmp-{os.getpid()}"
        shutil.copyfile(src, tmp)
        os.replace(tmp, dst)
        return dst
    if args.codec not in LEARNED:
        return None
    if os.path.exists(dst):
        log(f"model: {dst} (already there; delete it to fit again)")
        return dst
    if args.shard_index is not None:
        raise Failure("an array job needs the model first: --model, or one run with --fit-only")
    k = min(args.fit_shards, len(inputs))
    fit = [inputs[j * len(inputs) // k] for j in range(k)]
    per = samples_in(inputs[0])
    cmd = ["fit", *fit, "-o", dst, "-q", "--codec", args.codec, "--key-root", key_root]
    if args.ratio:
        cmd += ["--ratio", str(args.ratio)]
    if args.fit_samples:
        cmd += ["--fit-samples", str(args.fit_samples)]
    if per is not None:
        cmd += ["--shard-samples", str(per * args.files_per_shard)]
    log(f"model: fitting {args.codec} on {k} of {len(inputs)} inputs")
    run_ntc(ntc, cmd, dst)
    return dst


def write_manifest(args, tasks: list[dict], key_root: str) -> None:
    """DIR/manifest.jsonl: the inputs' manifest with the shard of every image."""
    src = os.path.join(key_root, "manifest.jsonl")
    if not os.path.exists(src):
        return
    by_input = {}
    for t in tasks:
        for p in t["inputs"]:
            by_input[os.path.splitext(os.path.relpath(p, key_root))[0]] = t["name"]
    dst = os.path.join(args.output, "manifest.jsonl")
    with open(src, encoding="utf-8") as f, open(dst + ".tmp", "w", encoding="utf-8") as g:
        for line in f:
            e = json.loads(line)
            e["ntcb"] = by_input.get(os.path.splitext(e.get("shard", ""))[0])
            g.write(json.dumps(e) + "\n")
    os.replace(dst + ".tmp", dst)


def finalize(args, ntc: str, tasks: list[dict], log) -> bool:
    """Writes the index when every shard of the plan is there; says whether it did."""
    names = {t["name"] for t in tasks}
    have = {f for f in os.listdir(args.output) if f.endswith(".ntcb")}
    stray = sorted(have - names)
    if stray:
        raise Failure(f"{args.output} holds shards that are not in the plan: {', '.join(stray[:5])}"
                      f"{' ...' if len(stray) > 5 else ''} (another run's? remove them)")
    missing = sorted(names - have)
    if missing:
        log(f"{len(names) - len(missing)} of {len(names)} shards there; the index waits for the others "
            f"(the last share writes it, or run again with --finalize)")
        return False
    run_ntc(ntc, ["index", args.output, "-q"], os.path.join(args.output, "index.json"))
    return True


def parse_args(argv):
    p = argparse.ArgumentParser(
        prog="encode_dataset.py",
        description="Encode token shards into an ntc dataset (DIR/index.json, DIR/model.ntcm, DIR/shard-*.ntcb), "
                    "one task per shard, on Dask distributed or here.",
        epilog="Examples:\n"
               "  scripts/encode_dataset.py 'tokens/*.npy' -o data/ --model clip-l.ntcm --dask local:8\n"
               "  scripts/encode_dataset.py tokens/ -o data/ --ratio 8 --dask tcp://scheduler:8786\n"
               "  scripts/encode_dataset.py 'tokens/*.npy' -o data/ --model m.ntcm --shard-count 64   # Slurm array\n"
               "  scripts/encode_dataset.py 'tokens/*.npy' -o data/ --codec int8 --dask none -- --chunk-size 1MiB\n"
               "\nFlags after -- go to every 'ntc encode'. See docs/usage.md.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="token files, globs or folders; one shard per file")
    p.add_argument("-o", "--output", required=True, metavar="DIR", help="the dataset's folder")
    p.add_argument("--model", help="encode with this model (.ntcm from 'ntc fit'); copied to DIR/model.ntcm")
    p.add_argument("--codec", default="ntc", help="codec without --model: ntc (fitted here), fp16, int8, fp8, int4 (default ntc)")
    p.add_argument("--ratio", type=float, help="target ratio of the fit (default: ntc's, 8)")
    p.add_argument("--fit-shards", type=int, default=4, help="inputs the fit reads, spread over the dataset (default 4)")
    p.add_argument("--fit-samples", type=int, help="samples of those the fit uses (default: ntc's)")
    p.add_argument("--fit-only", action="store_true", help="write DIR/model.ntcm and stop (before an array job)")
    p.add_argument("--files-per-shard", type=int, default=1, help="consecutive input files per shard (default 1)")
    p.add_argument("--key-root", help="keys are input paths relative to this folder (default: the inputs' common folder)")
    p.add_argument("--dask", default=None, metavar="local:N|tcp://HOST:PORT|none",
                   help="where tasks run (default: local:NCPU with Dask distributed installed, else none)")
    p.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="with --dask none: tasks at once (default: CPUs)")
    p.add_argument("--workers", type=int, help="chunks each 'ntc encode' encodes at once (default: CPUs / tasks at once)")
    p.add_argument("--retries", type=int, default=2, help="retries of a failed task, on Dask (default 2)")
    p.add_argument("--shard-index", type=int, help="run share I of --shard-count (default $SLURM_ARRAY_TASK_ID or $JOB_COMPLETION_INDEX)")
    p.add_argument("--shard-count", type=int, help="the number of shares (default $SLURM_ARRAY_TASK_COUNT)")
    p.add_argument("--finalize", action="store_true", help="only write the index (every shard must be there)")
    p.add_argument("--ntc", help="the ntc binary (default: $NTC, else ntc on PATH)")
    p.add_argument("--force", action="store_true", help="replace a different model in DIR")
    p.add_argument("-q", "--quiet", action="store_true", help="print nothing but errors")
    if "--" in argv:
        i = argv.index("--")
        argv, extra = argv[:i], argv[i + 1 :]
    else:
        extra = []
    args = p.parse_args(argv)
    args.extra = extra
    if args.shard_count is None and os.environ.get("SLURM_ARRAY_TASK_COUNT"):
        args.shard_count = int(os.environ["SLURM_ARRAY_TASK_COUNT"])
    if args.shard_count is not None and args.shard_index is None:
        env = os.environ.get("SLURM_ARRAY_TASK_ID") or os.environ.get("JOB_COMPLETION_INDEX")
        if env is None:
            p.error("--shard-count without --shard-index (or SLURM_ARRAY_TASK_ID / JOB_COMPLETION_INDEX)")
        args.shard_index = int(env)
    if args.shard_index is not None and (args.shard_count is None or not 0 <= args.shard_index < args.shard_count):
        p.error("--shard-index I needs --shard-count N with 0 <= I < N")
    if args.files_per_shard < 1 or args.fit_shards < 1 or args.jobs < 1:
        p.error("--files-per-shard, --fit-shards and --jobs must be at least 1")
    if args.model and (args.ratio or args.fit_samples):
        p.error("--model fixes the rate: --ratio and --fit-samples are for a fit")
    if args.dask and not (args.dask == "none" or args.dask.startswith("tcp://") or args.dask.startswith("tls://")
                          or (args.dask.startswith("local:") and args.dask[6:].isdigit() and int(args.dask[6:]) > 0)):
        p.error(f"--dask {args.dask!r}: want local:N, tcp://HOST:PORT or none")
    return args


def main(argv=None, client=None) -> int:
    """Runs the steps; client, if given, is a distributed.Client to run the tasks on."""
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)

    def log(msg):
        if not args.quiet:
            print(f"encode_dataset: {msg}", file=sys.stderr)

    try:
        ntc = find_ntc(args.ntc)
        inputs = expand(args.inputs)
        key_root = os.path.abspath(args.key_root) if args.key_root else os.path.commonpath([os.path.dirname(p) for p in inputs])
        os.makedirs(args.output, exist_ok=True)
        args.output = os.path.abspath(args.output)
        model = prepare_model(args, ntc, inputs, key_root, log)
        if args.fit_only:
            log(f"model: {model}")
            return 0
        tasks = plan(inputs, args.files_per_shard)
        sha = model_sha(model) if model else ""
        dask = args.dask
        if dask is None and client is None and args.shard_index is None:
            try:
                import distributed  # noqa: F401

                dask = f"local:{os.cpu_count() or 1}"
            except ImportError:
                dask = "none"
        at_once = args.jobs if dask in (None, "none") else (int(dask[6:]) if dask.startswith("local:") else 1)
        workers = args.workers or max(1, (os.cpu_count() or 1) // max(1, at_once))
        options = ["codec", args.codec, *args.extra] if not model else [*args.extra]
        for t in tasks:
            t.update(dir=args.output, ntc=ntc, model=model, codec=args.codec, key_root=key_root, extra=args.extra,
                     workers=workers, digest=digest(t, sha, options))
        mine = tasks if args.shard_index is None else tasks[args.shard_index :: args.shard_count]
        if args.finalize:
            mine = []
        log(f"{len(mine)} of {len(tasks)} shards to encode or check"
            + (f" (share {args.shard_index} of {args.shard_count})" if args.shard_index is not None else "")
            + (f" on {dask if client is None else 'the given cluster'}" if mine and args.shard_index is None else ""))
        prog = Progress(len(mine), args.quiet)
        if client is not None or (dask not in (None, "none") and mine):
            results = run_dask(mine, dask or "", prog, args.retries, client=client)
        else:
            results = run_local(mine, args.jobs, prog)
        prog.end()
        done = sum(not r["skipped"] for r in results)
        log(f"{done} shards encoded, {len(results) - done} there already")
        if not finalize(args, ntc, tasks, log):
            return 0 if not args.finalize else 1
        write_manifest(args, tasks, key_root)
        if not args.quiet:
            print(run_ntc(ntc, ["inspect", args.output], args.output), end="")
        return 0
    except Failure as e:
        print(f"encode_dataset: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
