#!/usr/bin/env python3
"""Judge decoded tokens by what a model's tail makes of them.

Runs the remaining layers of a vision transformer (its tail: blocks from
--start-block, final norm, head; see scripts/vit_tail.py) on the original
tokens and on each decoded file, and reports per file:
  agree   top-1 agreement: the share of samples whose predicted class is
          the same on the decoded tokens as on the originals
  kl      mean KL(p_orig || p_decoded) of the head's softmax, in nats
  kl_p99  its 99th percentile over samples
DeiT-Tiny on its block-10 tokens (the project's downstream task):

    ntc decode x.ntcb -o x.npy
    python3 scripts/task_eval.py deit_tiny_block10_dev.npy x.npy \\
        --weights ../shared/data/models/deit_tiny_patch16_224.safetensors --start-block 11

Decoded files are any [N, T, D] .npy (float16, float32, ...) with the same
samples as the original, or as many samples as --samples selects (a
decoded subset). Needs torch (CPU is enough). --json prints one JSON
object. Exit status 0 on success, 2 on bad arguments or input.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import vit_tail  # noqa: E402
from vit_tail import UsageError  # noqa: E402


def head_probs(tail, tokens, batch: int = 32):
    """Log-softmax of the tail's logits, float64 [N, classes]."""
    import numpy as np
    import torch

    out = []
    with torch.no_grad():
        for a, b in vit_tail.batches(len(tokens), batch):
            out.append(torch.log_softmax(tail(torch.tensor(tokens[a:b], dtype=torch.float32)).double(), -1).numpy())
    return np.concatenate(out)


def compare(logp_ref, logp):
    """Top-1 agreement and KL(ref || other) per sample."""
    import numpy as np

    kl = (np.exp(logp_ref) * (logp_ref - logp)).sum(-1)
    agree = logp_ref.argmax(-1) == logp.argmax(-1)
    return {"agree": float(agree.mean()), "kl": float(kl.mean()), "kl_p99": float(np.percentile(kl, 99)),
            "n": int(len(kl))}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__.split("\n\n", 1)[1])
    ap.add_argument("original", help="the original tokens [N, T, D] (.npy)")
    ap.add_argument("decoded", nargs="+", help="decoded tokens (.npy), one or more files")
    vit_tail.add_tail_args(ap)
    ap.add_argument("--samples", help="samples of the original to judge, e.g. 96-191 (default all)")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    args = ap.parse_args(argv)
    try:
        vit_tail.require_torch("task_eval")
        import numpy as np

        tail = vit_tail.make_tail_from(args)
        ref, idx = vit_tail.load_tokens(args.original, args.samples)
        logp_ref = head_probs(tail, ref, args.batch)
        rows = {}
        for path in args.decoded:
            d = np.load(path, mmap_mode="r") if os.path.exists(path) else None
            if d is None:
                raise UsageError(f"{path}: no such file")
            if d.ndim != 3 or d.shape[1:] != ref.shape[1:]:
                raise UsageError(f"{path}: shape {list(d.shape)}, the original's samples are {list(ref.shape[1:])}")
            if d.shape[0] == len(idx):
                x = np.asarray(d, dtype=np.float32)
            elif d.shape[0] > max(idx):
                x = np.asarray(d[idx], dtype=np.float32)
            else:
                raise UsageError(f"{path}: {d.shape[0]} samples, want {len(idx)} (the selected ones) or the original's")
            if not np.isfinite(x).all():
                raise UsageError(f"{path}: decoded tokens are not all finite")
            rows[path] = compare(logp_ref, head_probs(tail, x, args.batch))
    except (UsageError, OSError, ValueError) as e:
        print(f"task_eval: {e}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps({"original": args.original, "samples": args.samples or "all", "results": rows}, indent=1))
        return 0
    w = max(len(p) for p in rows)
    print(f"{'decoded':<{w}}  {'agree':>7}  {'kl':>9}  {'kl_p99':>9}  n")
    for p, r in rows.items():
        print(f"{p:<{w}}  {r['agree']:7.4f}  {r['kl']:9.6f}  {r['kl_p99']:9.6f}  {r['n']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
