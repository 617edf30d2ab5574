"""The remaining layers of a vision transformer, run on stored tokens.

Shared by scripts/task_metric.py (the Fisher metric of the tail, for
`ntc fit --task-metric`) and scripts/task_eval.py (top-1 agreement and KL
divergence of the head on decoded tokens). Import it from those scripts;
it is not a command.

Backends:
  builtin  plain torch on timm's key names: pre-norm blocks (LayerNorm eps
           1e-6, fused qkv, exact GELU), the final norm, a linear head on
           the CLS token. This is DeiT (deit_*_patch16_224 without
           distillation) and timm's plain vit_* classifiers. Needs only
           torch and the weights file (.safetensors read without the
           safetensors package when it is absent).
  timm     timm.create_model(NAME, pretrained=False) with the weights
           loaded: blocks[start:], then the model's norm and forward_head.
  hf       a local Hugging Face image classifier (ViTForImageClassification
           or DeiTForImageClassification layout): encoder.layer[start:],
           layernorm, classifier on the first token.

Tokens are [N, T, D] with `prefix` leading tokens (CLS, registers) before
the patch grid, as ntc stores them; the tail reads the output of block
start-1.
"""

from __future__ import annotations

import json
import os
import struct

NP_DTYPES = {"F64": "<f8", "F32": "<f4", "F16": "<f2", "I64": "<i8", "I32": "<i4", "I16": "<i2",
             "I8": "i1", "U8": "u1", "BOOL": "?"}


class UsageError(Exception):
    """A bad argument or input file; the message names it."""


def read_safetensors(path: str, names=None) -> dict:
    """Reads a .safetensors file into numpy arrays (float32 for BF16), all
    tensors or only `names`. Uses only numpy and the standard library."""
    import numpy as np

    size = os.path.getsize(path)
    with open(path, "rb") as f:
        head = f.read(8)
        if len(head) != 8:
            raise UsageError(f"{path}: not a safetensors file (shorter than 8 bytes)")
        (n,) = struct.unpack("<Q", head)
        if n > min(size - 8, 100 << 20):
            raise UsageError(f"{path}: safetensors header of {n} bytes in a {size}-byte file")
        try:
            header = json.loads(f.read(n))
        except ValueError as e:
            raise UsageError(f"{path}: safetensors header is not JSON: {e}") from None
        base = 8 + n
        out = {}
        for name, t in header.items():
            if name == "__metadata__" or (names is not None and name not in names):
                continue
            a, b = t["data_offsets"]
            if not 0 <= a <= b <= size - base:
                raise UsageError(f"{path}: tensor {name!r} data [{a}, {b}) outside the file")
            f.seek(base + a)
            raw = f.read(b - a)
            if t["dtype"] == "BF16":
                arr = (np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16).view(np.float32)
            elif t["dtype"] in NP_DTYPES:
                arr = np.frombuffer(raw, dtype=NP_DTYPES[t["dtype"]])
            else:
                raise UsageError(f"{path}: tensor {name!r} has unsupported dtype {t['dtype']}")
            shape = [int(s) for s in t["shape"]]
            if arr.size != int(np.prod(shape)):
                raise UsageError(f"{path}: tensor {name!r} holds {arr.size} values for shape {shape}")
            out[name] = arr.reshape(shape)
    if names is not None:
        missing = [x for x in names if x not in out]
        if missing:
            raise UsageError(f"{path}: no tensor {missing[0]!r} (has: {', '.join(sorted(k for k in header if k != '__metadata__')[:12])}...)")
    return out


def load_weights(path: str) -> dict:
    """A state dict as numpy arrays from .safetensors, .npz, or a torch
    .pth/.bin file (the last needs torch)."""
    if not os.path.exists(path):
        raise UsageError(f"{path}: no such weights file")
    if path.endswith(".safetensors"):
        return read_safetensors(path)
    if path.endswith(".npz"):
        import numpy as np

        with np.load(path) as z:
            return {k: z[k] for k in z.files}
    import torch

    sd = torch.load(path, map_location="cpu")
    for k in ("state_dict", "model", "module"):
        if isinstance(sd, dict) and k in sd and isinstance(sd[k], dict):
            sd = sd[k]
    return {k: v.detach().cpu().float().numpy() for k, v in sd.items() if hasattr(v, "detach")}


def parse_samples(spec: str | None, n: int) -> list[int]:
    """Sample indices from "0,5,10-20" (inclusive ranges, as ntc decode
    --samples), all n when spec is empty."""
    if not spec:
        return list(range(n))
    out = []
    for part in spec.split(","):
        part = part.strip()
        lo, sep, hi = part.partition("-")
        try:
            a = int(lo)
            b = int(hi) if sep else a
        except ValueError:
            raise UsageError(f"--samples {spec!r}: {part!r} is not N or A-B") from None
        if not 0 <= a <= b < n:
            raise UsageError(f"--samples {spec!r}: {part!r} outside 0-{n - 1}")
        out.extend(range(a, b + 1))
    return out


def load_tokens(path: str, samples: str | None = None):
    """Tokens [N, T, D] as float32 from a .npy file (memory-mapped), the
    samples `samples` selects."""
    import numpy as np

    if not os.path.exists(path):
        raise UsageError(f"{path}: no such token file")
    try:
        a = np.load(path, mmap_mode="r")
    except ValueError as e:
        raise UsageError(f"{path}: not a .npy token file: {e}") from None
    if a.ndim != 3:
        raise UsageError(f"{path}: tokens of shape {list(a.shape)}, want [N, T, D]")
    idx = parse_samples(samples, a.shape[0])
    return np.asarray(a[idx], dtype=np.float32), idx


class BuiltinTail:
    """Blocks start.. of a pre-norm ViT on timm's key names, its final norm
    and its head on the CLS token, in plain torch (float32)."""

    def __init__(self, sd: dict, start: int, heads: int | None = None, eps: float = 1e-6, device="cpu"):
        import torch

        self.torch = torch
        blocks = sorted({int(k.split(".")[1]) for k in sd if k.startswith("blocks.")})
        if not blocks:
            raise UsageError("weights have no blocks.N.* tensors (timm key names)")
        depth = blocks[-1] + 1
        if start < 0:
            start += depth
        if not 0 <= start <= depth:
            raise UsageError(f"--start-block {start}: the model has blocks 0-{depth - 1}")
        for k in ("norm.weight", "norm.bias", "head.weight", "head.bias"):
            if k not in sd:
                raise UsageError(f"weights have no {k!r}: the builtin tail needs a final norm and a linear head")
        if "dist_token" in sd or "head_dist.weight" in sd:
            raise UsageError("distilled DeiT (dist_token) needs --backend timm")
        keep = {k: v for k, v in sd.items() if k.startswith(("norm.", "head.")) or
                (k.startswith("blocks.") and int(k.split(".")[1]) >= start)}
        self.sd = {k: torch.tensor(v, dtype=torch.float32, device=device) for k, v in keep.items()}
        self.start, self.depth = start, depth
        self.dim = self.sd["norm.weight"].shape[0]
        self.heads = heads or max(1, self.dim // 64)
        if self.dim % self.heads:
            raise UsageError(f"dim {self.dim} is not a multiple of {self.heads} heads")
        self.eps = eps

    def _ln(self, x, p):
        return self.torch.nn.functional.layer_norm(x, (self.dim,), self.sd[p + ".weight"], self.sd[p + ".bias"], self.eps)

    def _lin(self, x, p):
        return self.torch.nn.functional.linear(x, self.sd[p + ".weight"], self.sd[p + ".bias"])

    def features(self, x):
        """The tail's blocks and final norm: [B, T, D] -> [B, T, D]."""
        F = self.torch.nn.functional
        B, T, D = x.shape
        if D != self.dim:
            raise UsageError(f"tokens of dim {D}, the model's is {self.dim}")
        H, hd = self.heads, D // self.heads
        for i in range(self.start, self.depth):
            p = f"blocks.{i}."
            h = self._ln(x, p + "norm1")
            qkv = self._lin(h, p + "attn.qkv").reshape(B, T, 3, H, hd).permute(2, 0, 3, 1, 4)
            q, k, v = qkv[0], qkv[1], qkv[2]
            a = ((q @ k.transpose(-2, -1)) * hd**-0.5).softmax(dim=-1)
            x = x + self._lin((a @ v).transpose(1, 2).reshape(B, T, D), p + "attn.proj")
            x = x + self._lin(F.gelu(self._lin(self._ln(x, p + "norm2"), p + "mlp.fc1")), p + "mlp.fc2")
        return self._ln(x, "norm")

    def __call__(self, x):
        """Logits [B, classes] of tokens [B, T, D]."""
        return self._lin(self.features(x)[:, 0], "head")


class TimmTail:
    """blocks[start:], norm and forward_head of a timm model."""

    def __init__(self, name: str, weights: str, start: int, device="cpu"):
        import timm
        import torch

        m = timm.create_model(name, pretrained=False)
        sd = {k: torch.as_tensor(v) for k, v in load_weights(weights).items()}
        m.load_state_dict(sd)
        self.m = m.to(device).eval()
        self.blocks = self.m.blocks[start:]

    def __call__(self, x):
        for b in self.blocks:
            x = b(x)
        return self.m.forward_head(self.m.norm(x))


class HFTail:
    """encoder.layer[start:], layernorm and classifier of a local Hugging
    Face image classifier."""

    def __init__(self, model_dir: str, start: int, device="cpu"):
        from transformers import AutoModelForImageClassification

        m = AutoModelForImageClassification.from_pretrained(model_dir, local_files_only=True)
        self.m = m.to(device).eval()
        base = getattr(m, m.base_model_prefix)
        self.layers = base.encoder.layer[start:]
        self.norm = base.layernorm

    def __call__(self, x):
        for layer in self.layers:
            x = layer(x)[0]
        return self.m.classifier(self.norm(x)[:, 0])


def require_torch(tool: str):
    """Raises UsageError, naming the tool, when torch is not installed."""
    try:
        import torch  # noqa: F401
    except ImportError:
        raise UsageError(f"{tool} needs torch (Debian's python3-torch, or pip install torch)") from None


def add_tail_args(ap):
    """The options that choose a model's tail (make_tail_from reads them)."""
    ap.add_argument("--weights", help="the model's weights (.safetensors, .npz or torch state dict)")
    ap.add_argument("--backend", default="builtin", choices=["builtin", "timm", "hf"])
    ap.add_argument("--model", help="timm model name, or the local directory of a Hugging Face model")
    ap.add_argument("--start-block", type=int, required=True, help="first block of the tail (negative: from the end)")
    ap.add_argument("--heads", type=int, help="attention heads (builtin; default dim/64)")


def make_tail_from(args, device="cpu"):
    """The tail that add_tail_args' options choose."""
    return make_tail(args.backend, args.weights, args.start_block, args.model, args.heads, device)


def make_tail(backend: str, weights: str, start: int, model: str | None = None, heads: int | None = None, device="cpu"):
    """The tail for a backend: builtin (weights file), timm (model name +
    weights) or hf (model directory)."""
    if backend == "builtin":
        if not weights:
            raise UsageError("--backend builtin needs --weights (a timm state dict)")
        return BuiltinTail(load_weights(weights), start, heads=heads, device=device)
    if backend == "timm":
        if not (model and weights):
            raise UsageError("--backend timm needs --model NAME and --weights")
        return TimmTail(model, weights, start, device=device)
    if backend == "hf":
        if not model:
            raise UsageError("--backend hf needs --model DIR (a local model directory)")
        return HFTail(model, start, device=device)
    raise UsageError(f"--backend {backend!r}: want builtin, timm or hf")


def batches(n: int, size: int):
    """[start, stop) pairs covering range(n) in steps of size."""
    for a in range(0, n, size):
        yield a, min(n, a + size)
