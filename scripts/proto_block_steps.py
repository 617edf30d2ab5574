#!/usr/bin/env python3
"""Prototype (not the codec): a step per sample and 4x4 block from each sample's own gradient fields.

The learned codec's class steps (model version 7) are static: one multiplier
per coefficient class and component, the same for every sample. The tail's
gradient fields say more per sample: which of its blocks the head reads.
This prototype measures what an encoder that runs the tail could gain by
scaling the step of every 4x4 block of every sample by w^-1/2, w the blend
(1 - b) + b * (the block's field energy over the sample's mean), in quarter
octaves, signalled as 4 bits per block and charged to its rate. Four
arms: one step; the block steps; static class steps (the codec's version 7
multipliers built the same way: an AC frequency pooled over the blocks of
a shape, a DC per block, from --class-fields); and both.

All arms are the same simplified transform coder, so that only the steps
differ: the prefix tokens exact, the grid tokens' PCA (fitted on every
sample of the file), a 2-D DCT per 4x4 block (smaller at the grid's edges),
a uniform quantizer, and as rate the ideal code length under a Laplacian of
each (block, frequency, component) class's standard deviation over its step
(static tables indexed by sigma/step, which follow a block's step as the
codec's buckets would). Each arm's step is searched to the same bits per
value (--rates), side information included. Figures are the tail's mean KL
and top-1 agreement on the decoded samples against the originals, and the
grid's SNR:

    python3 scripts/task_metric.py fisher deit_tiny_block10_dev.npy -o M.npy \\
        --fields G.npy --draws 8 --samples 96-191 \\
        --weights ../shared/data/models/deit_tiny_patch16_224.safetensors --start-block 11
    python3 scripts/proto_block_steps.py deit_tiny_block10_dev.npy G.npy --samples 96-191 \\
        --weights ../shared/data/models/deit_tiny_patch16_224.safetensors --start-block 11

The fields must be those of the selected samples (task_metric.py --fields
with the same --samples: [samples * draws, grid tokens, D]). Needs torch.
--json prints one JSON object. Exit status 0 on success, 2 on bad
arguments or input.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import task_eval  # noqa: E402
import vit_tail  # noqa: E402
from vit_tail import UsageError  # noqa: E402


def dct_mat(n):
    """The orthonormal DCT-II matrix of size n, [frequency, position]."""
    import numpy as np

    f, p = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
    m = np.cos(np.pi * (p + 0.5) * f / n) * np.sqrt(2 / n)
    m[0] /= np.sqrt(2)
    return m


def grid_blocks(gh, gw):
    """The 4x4 blocks of a gh x gw grid: (y0, x0, h, w)."""
    return [(y, x, min(4, gh - y), min(4, gw - x)) for y in range(0, gh, 4) for x in range(0, gw, 4)]


class Coder:
    """PCA + block DCT of a file's grid tokens [N, G, D], and the uniform
    quantizer with a Laplacian rate model per (block, frequency, component).
    With fixed_tables the rate model's tables do not follow the block steps
    (each class's table is the one for the step without them)."""

    def __init__(self, grid, gh, gw, fixed_tables=False):
        import numpy as np

        self.gh, self.gw, self.blocks = gh, gw, grid_blocks(gh, gw)
        self.fixed_tables = fixed_tables
        flat = grid.reshape(-1, grid.shape[-1])
        self.mean = flat.mean(0)
        _, v = np.linalg.eigh(np.cov((flat - self.mean).T))
        self.basis = v[:, ::-1]
        self.coefs = self.forward(grid)
        self.sigma = [np.sqrt((c ** 2).mean(0)) + 1e-12 for c in self.coefs]

    def forward(self, grid, center=True):
        import numpy as np

        y = ((grid - self.mean if center else grid) @ self.basis).reshape(len(grid), self.gh, self.gw, -1)
        out = []
        for (y0, x0, h, w) in self.blocks:
            c = np.einsum("fy,nyxk,gx->nfgk", dct_mat(h), y[:, y0:y0 + h, x0:x0 + w], dct_mat(w))
            out.append(c.reshape(len(grid), h * w, -1))
        return out

    def inverse(self, coefs, n):
        import numpy as np

        y = np.zeros((n, self.gh, self.gw, self.basis.shape[1]))
        for (y0, x0, h, w), c in zip(self.blocks, coefs):
            y[:, y0:y0 + h, x0:x0 + w] = np.einsum("fy,nfgk,gx->nyxk", dct_mat(h), c.reshape(n, h, w, -1), dct_mat(w))
        return y.reshape(n, self.gh * self.gw, -1) @ self.basis.T + self.mean

    def class_steps(self, fields, blend):
        """Static step multipliers per block [h*w, K] from the mean energy
        of the fields in the coefficient domain (the PCA and the DCTs are
        orthonormal, so a gradient transforms as the tokens do), pooled as
        the codec's classes are: an AC frequency over the blocks of a shape,
        a DC per block; weight (1 - blend) + blend * energy / its mean,
        multiplier weight^-1/2 in eighth octaves."""
        import numpy as np

        energy = [np.zeros_like(s) for s in self.sigma]
        for a in range(0, len(fields), 64):
            g = np.asarray(fields[a:a + 64], dtype=np.float64)
            for bi, c in enumerate(self.forward(g, center=False)):
                energy[bi] += (c ** 2).sum(0)
        pooled = {}
        for (_, _, h, w), e in zip(self.blocks, energy):
            acc = pooled.setdefault((h, w), [np.zeros_like(e), 0])
            acc[0] += e
            acc[1] += 1
        for (_, _, h, w), e in zip(self.blocks, energy):
            dc = e[0].copy()
            e[:] = pooled[(h, w)][0] / pooled[(h, w)][1]
            e[0] = dc
        mean = np.concatenate([e.ravel() for e in energy]).mean()
        return [np.exp2(np.round(8 * np.log2(((1 - blend) + blend * e / mean) ** -0.5)) / 8) for e in energy]

    def code(self, idx, step, mod, static=None):
        """Decoded grid tokens of samples idx and their bits, with block b
        of sample j quantized with step * mod[j, b] (times static[b], per
        frequency and component, when given)."""
        import numpy as np

        bits, dec = 0.0, []
        for bi, c in enumerate(self.coefs):
            base = step * (static[bi][None] if static is not None else np.ones((1, 1, 1)))
            st = base * mod[:, bi][:, None, None]
            q = np.round(c[idx] / st)
            bits += laplace_bits(q, self.sigma[bi][None] / (base if self.fixed_tables else st)).sum()
            dec.append(q * st)
        return self.inverse(dec, len(idx)), bits

    def at_rate(self, idx, mod, bits, static=None):
        """code() with the coarsest step (bisected in log) whose bits are at
        most bits."""
        lo, hi = math.log(1e-4), math.log(1e4)
        for _ in range(30):
            m = (lo + hi) / 2
            if self.code(idx, math.exp(m), mod, static)[1] > bits:
                lo = m
            else:
                hi = m
        return self.code(idx, math.exp(hi), mod, static)


def laplace_bits(q, s):
    """-log2 P(q) for integers q under a Laplacian of standard deviation s
    (in steps), integrated over each step."""
    import numpy as np

    b = s / math.sqrt(2)
    aq = np.abs(q)
    p = np.where(aq == 0, -np.expm1(-0.5 / b), 0.5 * np.exp(-np.maximum(aq - 0.5, 0) / b) * -np.expm1(-1 / b))
    return -np.log2(np.maximum(p, 1e-300))


def block_weights(fields, n, blocks, gh, gw, blend):
    """Per sample and block: (1 - blend) + blend * field energy / the
    sample's mean over its blocks. fields: [n * draws, gh * gw, D]."""
    import numpy as np

    draws = fields.shape[0] // n
    w = np.zeros((n, len(blocks)))
    for j in range(n):
        g = np.asarray(fields[j * draws:(j + 1) * draws], dtype=np.float64)
        e = (g * g).sum(axis=(0, 2)).reshape(gh, gw)
        for bi, (y0, x0, h, wd) in enumerate(blocks):
            w[j, bi] = e[y0:y0 + h, x0:x0 + wd].mean()
        w[j] /= max(w[j].mean(), 1e-300)
    return (1 - blend) + blend * w


def block_steps(w, bits=4):
    """Step multipliers w^-1/2 in quarter octaves within the 2^bits codes,
    geometric mean 1 per sample."""
    import numpy as np

    half = 2 ** (bits - 1)
    code = np.clip(np.round(4 * np.log2(w ** -0.5)), -half, half - 1)
    code -= np.round(code.mean(1, keepdims=True))
    return np.exp2(np.clip(code, -half, half - 1) / 4)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__.split("\n\n", 1)[1])
    ap.add_argument("tokens", help="the tokens [N, T, D] (.npy), prefix tokens first")
    ap.add_argument("fields", help="the selected samples' gradient fields (.npy, task_metric.py --fields)")
    ap.add_argument("--samples", help="the samples the fields are of, e.g. 96-191 (default all)")
    ap.add_argument("--prefix", type=int, default=1, help="prefix tokens (default 1: CLS)")
    ap.add_argument("--blend", type=float, default=0.7, help="share of the fields in the block weights (default 0.7)")
    ap.add_argument("--class-blend", type=float, default=0.7,
                    help="share of the fields in the static class weights (default 0.7)")
    ap.add_argument("--class-fields", help="fields to fit the static class steps on (default: FIELDS; "
                    "the codec's are the training samples')")
    ap.add_argument("--fixed-tables", action="store_true",
                    help="rate tables that do not follow the block steps (each class's table for the global step)")
    ap.add_argument("--rates", default="1.85,0.85", help="bits per grid value to compare at (default 1.85,0.85)")
    vit_tail.add_tail_args(ap)
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    args = ap.parse_args(argv)
    try:
        vit_tail.require_torch("proto_block_steps")
        import numpy as np

        for name, b in (("--blend", args.blend), ("--class-blend", args.class_blend)):
            if not 0 <= b <= 1:
                raise UsageError(f"{name} {b}: want 0 to 1")
        try:
            rates = [float(r) for r in args.rates.split(",")]
        except ValueError:
            raise UsageError(f"--rates {args.rates!r}: want numbers, comma-separated") from None
        if not rates or min(rates) <= 0:
            raise UsageError(f"--rates {args.rates!r}: want positive bits per value")
        x, _ = vit_tail.load_tokens(args.tokens, None)
        x = x.astype(np.float64)
        sel = np.asarray(vit_tail.parse_samples(args.samples, len(x)))
        n, t, d = x.shape
        g = t - args.prefix
        side = math.isqrt(max(g, 0))
        if args.prefix < 0 or g <= 0 or side * side != g:
            raise UsageError(f"{args.tokens}: {t} tokens with {args.prefix} prefix: the grid is not square")
        def load_fields(path, n):
            if not os.path.exists(path):
                raise UsageError(f"{path}: no such fields file")
            f = np.load(path, mmap_mode="r")
            if f.ndim != 3 or f.shape[1:] != (g, d) or not f.shape[0] or (n and f.shape[0] % n):
                want = f"[{n} samples * draws, {g}, {d}]" if n else f"[fields, {g}, {d}]"
                raise UsageError(f"{path}: fields of shape {list(f.shape)}, want {want}")
            return f

        fields = load_fields(args.fields, len(sel))
        cfields = load_fields(args.class_fields, 0) if args.class_fields else fields
        coder = Coder(x[:, args.prefix:], side, side, args.fixed_tables)
        ones = np.ones((len(sel), len(coder.blocks)))
        blocks = block_steps(block_weights(fields, len(sel), coder.blocks, side, side, args.blend))
        static = coder.class_steps(cfields, args.class_blend)
        arms = {"one step": (ones, None), "block steps": (blocks, None), "class steps": (ones, static),
                "class + block steps": (blocks, static)}
        tail = vit_tail.make_tail_from(args)
        ref = x[sel]
        logp_ref = task_eval.head_probs(tail, ref.astype(np.float32))
        values = len(sel) * g * d
        out = {}
        for r in rates:
            row = {}
            for arm, (mod, st) in arms.items():
                side_bits = 4 * mod.size if mod is blocks else 0
                grid, bits = coder.at_rate(sel, mod, r * values - side_bits, st)
                xh = ref.copy()
                xh[:, args.prefix:] = grid
                err = ((ref[:, args.prefix:] - grid) ** 2).sum()
                var = ((ref[:, args.prefix:] - ref[:, args.prefix:].mean()) ** 2).sum()
                res = task_eval.compare(logp_ref, task_eval.head_probs(tail, xh.astype(np.float32)))
                row[arm] = {"bits_per_value": (bits + side_bits) / values, "snr_db": 10 * math.log10(var / err),
                            "agree": res["agree"], "kl": res["kl"]}
            row["block_kl_change"] = row["block steps"]["kl"] / row["one step"]["kl"] - 1
            row["block_kl_change_over_class"] = row["class + block steps"]["kl"] / row["class steps"]["kl"] - 1
            out[str(r)] = row
    except (UsageError, OSError, ValueError) as e:
        print(f"proto_block_steps: {e}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps({"tokens": args.tokens, "samples": args.samples or "all", "blend": args.blend,
                          "class_blend": args.class_blend, "rates": out}, indent=1))
        return 0
    print(f"{'bits/value':>10}  {'arm':<20} {'SNR dB':>7} {'agree':>7} {'KL':>9}")
    for r, row in out.items():
        for arm in arms:
            a = row[arm]
            print(f"{a['bits_per_value']:10.3f}  {arm:<20} {a['snr_db']:7.2f} {a['agree']:7.4f} {a['kl']:9.6f}")
        print(f"{'':>10}  KL change of the block steps {100 * row['block_kl_change']:+.1f}%, "
              f"over the class steps {100 * row['block_kl_change_over_class']:+.1f}%")
    return 0


if __name__ == "__main__":
    sys.exit(main())
