#!/usr/bin/env python3
"""Compute a task metric for `ntc fit/encode --task-metric M.npy`.

A task metric is a [D, D] symmetric positive semi-definite matrix M: ntc's
fit then measures the distortion of a token as (x - x_hat)^T M (x - x_hat)
(blended with plain squared error, see docs/codec.md), so that the bits go
where the downstream model looks. Its scale does not matter.

  fisher  the Fisher metric of a model's remaining layers (its tail) on a
          sample of tokens: M = E[sum_t g_t g_t^T], g_t the gradient of
          log p(y | x) with respect to grid token t, y drawn from the
          model's own softmax (--draws times per sample). A quadratic
          approximation of the KL divergence between the tail's outputs on
          the original and on the decoded tokens. Needs torch.
  linear  M = W^T W for a linear layer W [out, D] that reads the tokens
          (a LLaVA-style projector's first layer): the same as passing
          W.safetensors:NAME to ntc directly, written out as a matrix.
          Needs only numpy.

    python3 scripts/task_metric.py fisher tokens.npy -o M.npy \\
        --weights deit_tiny_patch16_224.safetensors --start-block 11 --samples 0-95
    python3 scripts/task_metric.py linear projector.safetensors:model.mm_projector.0.weight -o M.npy
    ntc encode tokens.npy -o tokens.ntcb --ratio 16 --task-metric M.npy

Fit the metric on other tokens than the ones you judge the codec on (for
example the first half of a file, judged on the second half).

Tokens are [N, T, D] .npy files as ntc reads them, with --prefix leading
tokens (CLS, registers; 1 by default) that the tail reads but the metric
leaves out (ntc stores them at int8 precision anyway). --start-block is the
first block of the tail: the tokens are the output of the block before it
(DeiT-Tiny's block-10 tokens: --start-block 11). Backends: see
scripts/vit_tail.py (builtin: plain torch on timm key names, the default;
timm; hf).

Writes M as float64 .npy (atomically) and M.json beside it: how it was
made and its spectrum (trace, effective rank, the share of the leading
eigenvalues). Exit status 0 on success, 2 on bad arguments or input.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import vit_tail  # noqa: E402
from vit_tail import UsageError  # noqa: E402


def waterfill_noise(tokens, prefix: int, snr_db: float):
    """A [D, D] factor L such that L z (z standard normal) is the error of a
    rate-distortion optimal coder of the grid tokens at snr_db: reverse
    water-filling over the eigenvalues of their covariance, error
    variance min(lambda_i, theta) per eigenvector, theta set so that the
    error is 10^(-snr/10) of the variance."""
    import numpy as np

    D = tokens.shape[-1]
    g = tokens[:, prefix:].reshape(-1, D).astype(np.float64)
    lam, v = np.linalg.eigh(np.cov(g, rowvar=False))
    lam = np.clip(lam, 0, None)
    target = lam.sum() * 10 ** (-snr_db / 10)
    lo, hi = 0.0, float(lam.max())
    for _ in range(100):
        theta = (lo + hi) / 2
        lo, hi = (theta, hi) if np.minimum(lam, theta).sum() < target else (lo, theta)
    return v * np.sqrt(np.minimum(lam, (lo + hi) / 2))


def fisher_metric(tail, tokens, prefix: int = 1, draws: int = 32, batch: int = 16, seed: int = 0,
                  noise_snr: float | None = None, progress=None, fields=None):
    """M = mean over samples and draws of sum_t g_t g_t^T (grid tokens t),
    g_t = d log p(y | x) / d x_t with y ~ softmax(tail(x)). With
    noise_snr, each draw takes the gradient at x + e instead, e the error
    of a rate-distortion optimal coder at that SNR (waterfill_noise): the
    Fisher averaged over the neighbourhood a codec at that rate visits.
    tokens is a float32 array [N, T, D]; returns a float64 [D, D] numpy
    array. fields, when given, is a writable array [N * draws, T - prefix,
    D] that receives every gradient field (row n * draws + d: sample n,
    draw d): the spatial structure of the tail's sensitivity, which M
    averages away and `ntc fit --task-fields` turns into a step per
    coefficient class."""
    import numpy as np
    import torch

    N, T, D = tokens.shape
    if not 0 <= prefix < T:
        raise UsageError(f"--prefix {prefix} with {T} tokens per sample")
    gen = torch.Generator().manual_seed(seed)
    L = None
    if noise_snr is not None:
        L = torch.tensor(waterfill_noise(tokens, prefix, noise_snr), dtype=torch.float32)
    M = torch.zeros(D, D, dtype=torch.float64)
    for a, b in vit_tail.batches(N, batch):
        x0 = torch.tensor(tokens[a:b], dtype=torch.float32)
        x = x0.clone().requires_grad_(True)
        if L is None:
            logp = torch.log_softmax(tail(x).double(), dim=-1)
        for d in range(draws):
            if L is not None:
                e = torch.randn(x0.shape, generator=gen) @ L.T
                e[:, :prefix] = 0
                x = (x0 + e).requires_grad_(True)
                logp = torch.log_softmax(tail(x).double(), dim=-1)
            y = torch.multinomial(logp.detach().exp(), 1, generator=gen)
            (g,) = torch.autograd.grad(logp.gather(1, y).sum(), x, retain_graph=L is None and d + 1 < draws)
            g = g[:, prefix:]
            if fields is not None:
                for i in range(b - a):
                    fields[(a + i) * draws + d] = g[i].numpy()
            g = g.reshape(-1, D).double()
            M += g.T @ g
        if progress:
            progress(b, N)
    M /= N * draws
    M = 0.5 * (M + M.T)
    return M.numpy()


def linear_metric(spec: str):
    """M = W^T W for W.safetensors:NAME (or W.npy, a [out, D] matrix)."""
    import numpy as np

    path, name = spec, ""
    if ":" in spec and not os.path.exists(spec):
        path, _, name = spec.rpartition(":")
    if name:
        w = vit_tail.read_safetensors(path, [name])[name]
    else:
        if not path.endswith(".npy"):
            raise UsageError(f"{spec}: want W.safetensors:NAME or W.npy")
        if not os.path.exists(path):
            raise UsageError(f"{path}: no such file")
        w = np.load(path)
    if w.ndim != 2:
        raise UsageError(f"{spec}: a linear layer is [out, D], got shape {list(w.shape)}")
    w = np.asarray(w, dtype=np.float64)
    if not np.isfinite(w).all():
        raise UsageError(f"{spec}: weights are not all finite")
    return w.T @ w


def spectrum(M) -> dict:
    """Trace, effective rank (exp of the entropy of the normalised
    eigenvalues) and the share of the leading eigenvalues."""
    import numpy as np

    ev = np.clip(np.linalg.eigvalsh(M)[::-1], 0, None)
    tr = float(ev.sum())
    p = ev / tr if tr > 0 else ev
    nz = p[p > 0]
    share = {f"top{k}": float(p[:k].sum()) for k in (1, 4, 16, 64) if k <= len(p)}
    return {"trace": tr, "effective_rank": float(np.exp(-(nz * np.log(nz)).sum())) if len(nz) else 0.0,
            "eigen_share": share, "min_eigen_over_trace": float(ev[-1] / tr) if tr > 0 else 0.0}


def write_npy(path: str, M) -> str:
    """Writes M atomically and returns its SHA-256 (of the .npy bytes)."""
    import numpy as np

    tmp = f"{path}.tmp{os.getpid()}"
    try:
        with open(tmp, "wb") as f:
            np.save(f, np.ascontiguousarray(M, dtype=np.float64))
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def parse_args(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__.split("\n\n", 1)[1])
    sub = ap.add_subparsers(dest="cmd", required=True)
    f = sub.add_parser("fisher", help="Fisher metric of a model's tail on tokens (torch)")
    f.add_argument("tokens", help="tokens [N, T, D] (.npy) the tail reads")
    vit_tail.add_tail_args(f)
    f.add_argument("--prefix", type=int, default=1, help="leading non-grid tokens (default 1, the CLS token)")
    f.add_argument("--samples", help="samples to use, e.g. 0-95 (default all)")
    f.add_argument("--draws", type=int, default=32, help="labels drawn per sample (default 32; fewer are faster and noisier)")
    f.add_argument("--noise-snr", type=float, help="take the gradients at tokens perturbed by the error of an ideal coder at this SNR (dB)")
    f.add_argument("--batch", type=int, default=16)
    f.add_argument("--seed", type=int, default=0)
    f.add_argument("--device", default="cpu")
    f.add_argument("-o", "--output", required=True, help="output .npy")
    f.add_argument("--fields", help="also write every gradient field to this .npy, float32 [samples * draws, "
                   "grid tokens, D], for ntc fit/encode --task-fields (large: 2 x draws x the float16 tokens' size; "
                   "docs/results.md measured --draws 8)")
    f.add_argument("-q", "--quiet", action="store_true")
    lin = sub.add_parser("linear", help="M = W^T W of a linear layer (numpy)")
    lin.add_argument("weight", help="W.safetensors:NAME or W.npy, a [out, D] matrix")
    lin.add_argument("-o", "--output", required=True, help="output .npy")
    lin.add_argument("-q", "--quiet", action="store_true")
    return ap.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    if not args.output.endswith(".npy"):
        print(f"task_metric: -o {args.output}: want a .npy file", file=sys.stderr)
        return 2
    t0 = time.time()
    try:
        if args.cmd == "fisher":
            if args.draws < 1 or args.batch < 1:
                raise UsageError("--draws and --batch must be at least 1")
            vit_tail.require_torch("fisher")
            tokens, idx = vit_tail.load_tokens(args.tokens, args.samples)
            tail = vit_tail.make_tail_from(args, args.device)

            def progress(done, total):
                if not args.quiet and sys.stderr.isatty():
                    print(f"\rfisher: {done}/{total} samples", end="", file=sys.stderr)

            fields, ftmp = None, None
            if args.fields:
                import numpy as np

                if not args.fields.endswith(".npy"):
                    raise UsageError(f"--fields {args.fields}: want a .npy file")
                ftmp = f"{args.fields}.tmp{os.getpid()}"
                fields = np.lib.format.open_memmap(ftmp, mode="w+", dtype=np.float32,
                                                   shape=(len(idx) * args.draws, tokens.shape[1] - args.prefix,
                                                          tokens.shape[2]))
            try:
                M = fisher_metric(tail, tokens, args.prefix, args.draws, args.batch, args.seed, args.noise_snr,
                                  progress, fields)
                if fields is not None:
                    fields.flush()
                    del fields
                    os.replace(ftmp, args.fields)
            finally:
                if ftmp and os.path.exists(ftmp):
                    os.unlink(ftmp)
            info = {"kind": "fisher", "tokens": os.path.abspath(args.tokens), "samples": args.samples or "all",
                    "n_samples": len(idx), "backend": args.backend, "model": args.model,
                    "weights": os.path.abspath(args.weights) if args.weights else None,
                    "start_block": args.start_block, "prefix": args.prefix, "draws": args.draws, "seed": args.seed,
                    "noise_snr": args.noise_snr}
        else:
            M = linear_metric(args.weight)
            info = {"kind": "linear", "weight": args.weight}
    except (UsageError, OSError, ValueError, KeyError) as e:
        print(f"task_metric: {e}", file=sys.stderr)
        return 2
    info["dim"] = int(M.shape[0])
    info.update(spectrum(M))
    info["seconds"] = round(time.time() - t0, 2)
    info["sha256"] = write_npy(args.output, M)
    side = os.path.splitext(args.output)[0] + ".json"
    with open(side, "w") as f:
        json.dump(info, f, indent=1)
        f.write("\n")
    if not args.quiet:
        if sys.stderr.isatty():
            print(file=sys.stderr)
        sh = ", ".join(f"{k} {v:.3f}" for k, v in info["eigen_share"].items())
        print(f"{args.output}: [{info['dim']}, {info['dim']}] {info['kind']} metric, effective rank "
              f"{info['effective_rank']:.1f}, eigenvalue share {sh} ({info['seconds']} s); details in {side}",
              file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
