#!/usr/bin/env python3
"""Run a vision transformer over images and keep its tokens, for ntc.

Images (folders, globs, or list files) -> token shards [N, T, D] (float16
.npy or .safetensors) plus a manifest (manifest.jsonl: one line per image
with its shard, index in the shard and the key `ntc encode` gives it).

    python3 scripts/dump_tokens.py PHOTOS/ -o tokens/ \
        --model deit_tiny_patch16_224 --weights deit_tiny.safetensors --layer -2

Backends (--backend):
  timm     timm.create_model(NAME, pretrained=False) + the weights file
           (.safetensors, or a torch .pth/.bin state dict).
  hf       Hugging Face transformers: AutoModel.from_pretrained(LOCAL_DIR)
           with --model the local directory (no network is used).
  builtin  a plain ViT written here (patch embedding, CLS token, position
           embedding, pre-norm blocks, final LayerNorm) that loads timm's key
           names: DeiT and timm's plain ViTs without registers. Needs only
           torch, for machines without timm.
  auto     timm when installed, else builtin (the default).

Layers (--layer):
  final    what the model's forward_features returns (timm: after the final
           norm), or last_hidden_state (hf).
  N        the output of block N (0-based; negative counts from the end),
           before any norm: --layer -2 is what LLaVA-style models read
           (hidden_states[-2]); for DeiT-Tiny's 12 blocks it is block 10.

Usual choices (see docs/usage.md):
  CLIP ViT-L/14-336 (LLaVA-1.5):  --backend hf --model DIR/clip-vit-large-patch14-336 --layer -2 --crop model
  SigLIP (so400m, no CLS token): --backend hf --model DIR/siglip-so400m-patch14-384 --layer -2 --crop model
  DINOv2 (ViT-B/14, CLS + grid): --backend timm --model vit_base_patch14_dinov2 --weights W.safetensors --layer final --crop model
  DeiT-Tiny (the project's test model): --model deit_tiny_patch16_224 --weights W.safetensors --layer -2

Preprocessing (--crop):
  center-square  the centre square of the image, resized to --size with
                 PIL (--interp, bicubic by default), pixels / 255,
                 normalised with --mean/--std (ImageNet's by default).
  full           the whole image resized to --size x --size (aspect not kept).
  model          the model's own default transform (timm's data config, or
                 the hf image processor).
Grayscale and RGBA images are converted to RGB.

Resumable: shard k holds images [k*S, (k+1)*S) of the image list (S =
--shard-size; folders are listed sorted, list files and arguments in their
order), less any that --skip-bad skipped; shard-K.images.json lists them.
A shard is written to a temporary file and renamed when complete, and
finished shards are skipped when the command runs again with the same
settings (kept in dump.json; a different setting is refused).
"""

from __future__ import annotations

import argparse
import glob
import json
import math
import os
import struct
import sys
import time

IMAGE_EXTS = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm"}
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class UsageError(Exception):
    pass


class InputError(Exception):
    """An input that cannot be used: a missing or unreadable weights file (exit 1)."""


WEIGHTS_HINT = (
    "--weights takes the model's checkpoint (.safetensors, or a torch .pth/.bin state dict) with timm's key "
    "names; for DeiT-Tiny: curl -L -o deit_tiny_patch16_224.safetensors "
    "https://huggingface.co/timm/deit_tiny_patch16_224.fb_in1k/resolve/main/model.safetensors (docs/usage.md)"
)


def check_weights(path: str | None) -> None:
    """Refuses, before any work, a --weights path that is not a readable file."""
    if path is None:
        return
    if not os.path.exists(path):
        raise InputError(f"--weights {path}: no such file. {WEIGHTS_HINT}")
    if not os.path.isfile(path):
        raise InputError(f"--weights {path}: not a file. {WEIGHTS_HINT}")
    try:
        with open(path, "rb") as f:
            head = f.read(8)
            size = os.fstat(f.fileno()).st_size
            if path.endswith(".safetensors"):
                (n,) = struct.unpack("<Q", head) if len(head) == 8 else (-1,)
                ok = 2 <= n <= min(size - 8, 100 << 20)
                if ok:
                    try:
                        ok = isinstance(json.loads(f.read(n)), dict)
                    except ValueError:
                        ok = False
                if not ok:
                    raise InputError(f"--weights {path}: not a .safetensors file (its header does not parse). {WEIGHTS_HINT}")
    except OSError as e:
        raise InputError(f"--weights {path}: {e.strerror}") from None


# ------------------------------------------------------------------ inputs ---


def list_images(inputs: list[str]) -> list[str]:
    """Expands folders (recursively), globs and list files (.txt / .lst, or
    @FILE: one image path per line, relative to the list's folder)."""
    out: list[str] = []
    for spec in inputs:
        if spec.startswith("@") or os.path.splitext(spec)[1].lower() in (".txt", ".lst"):
            lst = spec[1:] if spec.startswith("@") else spec
            base = os.path.dirname(lst)
            with open(lst, encoding="utf-8") as f:
                for line in f:
                    line = line.strip()
                    if line and not line.startswith("#"):
                        out.append(line if os.path.isabs(line) else os.path.join(base, line))
        elif os.path.isdir(spec):
            found = []
            for root, dirs, files in os.walk(spec):
                dirs.sort()
                for fn in files:
                    if os.path.splitext(fn)[1].lower() in IMAGE_EXTS:
                        found.append(os.path.join(root, fn))
            out.extend(sorted(found))
        elif any(c in spec for c in "*?["):
            matches = sorted(glob.glob(spec, recursive=True))
            if not matches:
                raise UsageError(f"{spec}: no file matches")
            out.extend(m for m in matches if os.path.isfile(m))
        elif os.path.isfile(spec):
            out.append(spec)
        else:
            raise UsageError(f"{spec}: no such file or folder")
    if not out:
        raise UsageError("no images found in the inputs")
    return out


# ---------------------------------------------------------- preprocessing ---


def load_rgb(path: str):
    from PIL import Image

    with Image.open(path) as im:
        im.load()
        if im.mode in ("RGBA", "LA", "P"):
            im = im.convert("RGBA")
            bg = Image.new("RGBA", im.size, (255, 255, 255, 255))
            im = Image.alpha_composite(bg, im)
        return im.convert("RGB")


def center_square(im):
    w, h = im.size
    s = min(w, h)
    left, top = (w - s) // 2, (h - s) // 2
    return im.crop((left, top, left + s, top + s))


class Preprocess:
    """Turns an image path into a normalised float32 tensor [3, H, W]."""

    def __init__(self, args, model_transform=None):
        from PIL import Image

        self.kind = args.crop
        self.size = args.size
        self.interp = {
            "bicubic": Image.BICUBIC,
            "bilinear": Image.BILINEAR,
            "lanczos": Image.LANCZOS,
            "nearest": Image.NEAREST,
        }[args.interp]
        self.mean = args.mean
        self.std = args.std
        self.model_transform = model_transform
        if self.kind == "model" and model_transform is None:
            raise UsageError("--crop model: this backend has no default transform; use --crop center-square")

    def __call__(self, path: str):
        import numpy as np
        import torch

        im = load_rgb(path)
        if self.kind == "model":
            return self.model_transform(im)
        if self.kind == "center-square":
            im = center_square(im)
        im = im.resize((self.size, self.size), self.interp)
        x = np.asarray(im, dtype=np.float32) / 255.0
        x = (x - np.asarray(self.mean, dtype=np.float32)) / np.asarray(self.std, dtype=np.float32)
        return torch.from_numpy(np.ascontiguousarray(x.transpose(2, 0, 1)))


# ------------------------------------------------------------------ weights ---


def read_safetensors(path: str) -> dict:
    """Reads a .safetensors file into torch tensors (without the safetensors package)."""
    import numpy as np
    import torch

    dtypes = {"F32": np.float32, "F16": np.float16, "F64": np.float64, "I64": np.int64, "I32": np.int32,
              "U8": np.uint8, "I8": np.int8, "BOOL": np.bool_}
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        if n > 100 << 20:
            raise ValueError(f"{path}: safetensors header of {n} bytes")
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, t in header.items():
        if name == "__metadata__":
            continue
        a, b = t["data_offsets"]
        if t["dtype"] == "BF16":
            raw = np.frombuffer(data[a:b], dtype=np.uint16).astype(np.uint32) << 16
            arr = raw.view(np.float32)
        else:
            arr = np.frombuffer(data[a:b], dtype=dtypes[t["dtype"]])
        out[name] = torch.from_numpy(arr.reshape(t["shape"]).copy())
    return out


def load_state_dict(path: str) -> dict:
    """Reads a checkpoint; a file that is not one is an InputError naming it."""
    try:
        sd = _load_state_dict(path)
    except (UsageError, InputError, KeyboardInterrupt):
        raise
    except Exception as e:  # every reader's own error class: json, struct, pickle, zip, torch
        raise InputError(f"{path}: not a readable checkpoint ({type(e).__name__}: {e}). {WEIGHTS_HINT}") from None
    if not isinstance(sd, dict) or not sd:
        raise InputError(f"{path}: holds no tensors. {WEIGHTS_HINT}")
    return sd


def _load_state_dict(path: str) -> dict:
    if path.endswith(".safetensors"):
        try:
            from safetensors.torch import load_file

            return load_file(path)
        except ImportError:
            return read_safetensors(path)
    import torch

    sd = torch.load(path, map_location="cpu")
    for k in ("state_dict", "model", "module"):
        if isinstance(sd, dict) and k in sd and isinstance(sd[k], dict):
            sd = sd[k]
    return sd


# ------------------------------------------------------------------- models ---


class _Stop(Exception):
    """Raised by a forward hook to skip the blocks after the chosen layer."""


class Extractor:
    """Runs a model on a batch [B, 3, H, W] and returns tokens [B, T, D]."""

    prefix = 1  # prefix tokens (CLS, registers) at the start of the sequence
    transform = None  # the model's own preprocessing, for --crop model
    name = ""

    def __call__(self, x):
        raise NotImplementedError


def _block_index(layer: str, depth: int) -> int | None:
    if layer == "final":
        return None
    try:
        i = int(layer)
    except ValueError:
        raise UsageError(f"--layer {layer!r}: want 'final' or a block index") from None
    j = i + depth if i < 0 else i
    if not 0 <= j < depth:
        raise UsageError(f"--layer {i}: the model has {depth} blocks")
    return j


class TimmExtractor(Extractor):
    def __init__(self, args, device):
        import timm
        import torch

        self.model = timm.create_model(args.model, pretrained=False)
        if args.weights:
            sd = load_state_dict(args.weights)
            missing, unexpected = self.model.load_state_dict(sd, strict=False)
            missing = [k for k in missing if not k.startswith(("head", "fc_norm"))]
            if missing or unexpected:
                raise UsageError(f"{args.weights}: weights do not fit {args.model}: missing {missing[:5]}, unexpected {unexpected[:5]}")
        else:
            print("warning: no --weights: the model has random weights", file=sys.stderr)
        self.model.eval().to(device)
        self.prefix = int(getattr(self.model, "num_prefix_tokens", 1))
        self.block = _block_index(args.layer, len(self.model.blocks))
        self.name = f"timm:{args.model}"
        cfg = timm.data.resolve_data_config({}, model=self.model)
        self.transform = timm.data.create_transform(**cfg)
        self.torch = torch

    def __call__(self, x):
        if self.block is None:
            return self.model.forward_features(x)
        out = {}

        def hook(_m, _inp, o):
            out["x"] = o
            raise _Stop

        h = self.model.blocks[self.block].register_forward_hook(hook)
        try:
            self.model.forward_features(x)
        except _Stop:
            pass
        finally:
            h.remove()
        return out["x"]


class HFExtractor(Extractor):
    def __init__(self, args, device):
        import torch
        from transformers import AutoConfig, AutoImageProcessor, AutoModel

        cfg = AutoConfig.from_pretrained(args.model, local_files_only=True)
        model = AutoModel.from_pretrained(args.model, local_files_only=True, torch_dtype=torch.float32)
        if hasattr(model, "vision_model"):  # CLIPModel / SiglipModel: keep the vision tower
            model = model.vision_model
        self.model = model.eval().to(device)
        vcfg = getattr(cfg, "vision_config", cfg)
        self.depth = int(vcfg.num_hidden_layers)
        self.block = _block_index(args.layer, self.depth)
        mt = getattr(vcfg, "model_type", "")
        self.prefix = 0 if "siglip" in mt else 1 + int(getattr(vcfg, "num_register_tokens", 0) or 0)
        self.name = f"hf:{os.path.basename(os.path.normpath(args.model))}"
        try:
            proc = AutoImageProcessor.from_pretrained(args.model, local_files_only=True)
            self.transform = lambda im: proc(images=im, return_tensors="pt")["pixel_values"][0]
        except Exception:  # noqa: BLE001 - a model folder without a processor
            self.transform = None

    def __call__(self, x):
        out = self.model(pixel_values=x, output_hidden_states=self.block is not None)
        if self.block is None:
            return out.last_hidden_state
        return out.hidden_states[self.block + 1]  # hidden_states[0] is the embedding


class BuiltinViT(Extractor):
    """A plain ViT (DeiT, timm's vit_*_patch*_* without registers) on timm's key names."""

    def __init__(self, args, device):
        import torch

        if not args.weights:
            raise UsageError("--backend builtin needs --weights (a timm state dict)")
        sd = load_state_dict(args.weights)
        self.sd = {k: v.to(device=device, dtype=torch.float32) for k, v in sd.items()}
        self.depth = 1 + max(int(k.split(".")[1]) for k in sd if k.startswith("blocks."))
        self.dim = sd["cls_token"].shape[-1]
        self.heads = args.heads or max(1, self.dim // 64)
        w = sd["patch_embed.proj.weight"]
        self.patch = w.shape[-1]
        self.prefix = 1 + (sd["reg_token"].shape[1] if "reg_token" in sd else 0)
        if "reg_token" in sd or "dist_token" in sd:
            raise UsageError("--backend builtin: models with register or distillation tokens need timm")
        self.block = _block_index(args.layer, self.depth)
        self.eps = 1e-6
        self.name = f"builtin:{args.model}"
        self.torch = torch

    def _ln(self, x, p):
        F = self.torch.nn.functional
        return F.layer_norm(x, (self.dim,), self.sd[p + ".weight"], self.sd[p + ".bias"], self.eps)

    def _lin(self, x, p):
        return self.torch.nn.functional.linear(x, self.sd[p + ".weight"], self.sd[p + ".bias"])

    def __call__(self, x):
        torch, F, sd = self.torch, self.torch.nn.functional, self.sd
        B = x.shape[0]
        x = F.conv2d(x, sd["patch_embed.proj.weight"], sd["patch_embed.proj.bias"], stride=self.patch)
        x = x.flatten(2).transpose(1, 2)  # [B, HW, D]
        x = torch.cat([sd["cls_token"].expand(B, -1, -1), x], dim=1)
        pos = sd["pos_embed"]
        if pos.shape[1] != x.shape[1]:
            raise UsageError(f"position embedding for {pos.shape[1]} tokens, the image gives {x.shape[1]}: use --size {self.patch * int(math.isqrt(pos.shape[1] - 1))}")
        x = x + pos
        H, hd = self.heads, self.dim // self.heads
        for i in range(self.depth):
            p = f"blocks.{i}."
            h = self._ln(x, p + "norm1")
            qkv = self._lin(h, p + "attn.qkv").reshape(B, -1, 3, H, hd).permute(2, 0, 3, 1, 4)
            q, k, v = qkv[0], qkv[1], qkv[2]
            a = (q @ k.transpose(-2, -1)) * hd**-0.5
            a = a.softmax(dim=-1)
            h = (a @ v).transpose(1, 2).reshape(B, -1, self.dim)
            x = x + self._lin(h, p + "attn.proj")
            h = self._ln(x, p + "norm2")
            h = self._lin(F.gelu(self._lin(h, p + "mlp.fc1")), p + "mlp.fc2")
            x = x + h
            if i == self.block:
                return x
        return self._ln(x, "norm")


def make_extractor(args, device) -> Extractor:
    backend = args.backend
    if backend == "auto":
        try:
            import timm  # noqa: F401

            backend = "timm"
        except ImportError:
            backend = "builtin"
    if backend == "timm":
        return TimmExtractor(args, device)
    if backend == "hf":
        return HFExtractor(args, device)
    return BuiltinViT(args, device)


# ------------------------------------------------------------------- output ---


def npy_header(shape, descr="<f2") -> bytes:
    h = "{'descr': '%s', 'fortran_order': False, 'shape': (%s), }" % (descr, ", ".join(str(s) for s in shape) + ("," if len(shape) == 1 else ""))
    pad = 64 - (10 + len(h) + 1) % 64
    h = h + " " * pad + "\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(h)) + h.encode("latin1")


def write_shard(path: str, arr, fmt: str, meta: dict) -> None:
    """Writes arr [N, T, D] to path atomically (temporary file, fsync, rename)."""
    import numpy as np

    arr = np.ascontiguousarray(arr)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        if fmt == "npy":
            f.write(npy_header(arr.shape, arr.dtype.str))
        else:
            dt = "F16" if arr.dtype == np.float16 else "F32"
            header = {"__metadata__": {k: str(v) for k, v in meta.items()},
                      "tokens": {"dtype": dt, "shape": list(arr.shape), "data_offsets": [0, arr.nbytes]}}
            hb = json.dumps(header, separators=(",", ":")).encode()
            hb += b" " * (-len(hb) % 8)
            f.write(struct.pack("<Q", len(hb)) + hb)
        f.write(arr.tobytes())
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _sidecar(shard_name: str) -> str:
    return os.path.splitext(shard_name)[0] + ".images.json"


def _done(out: str, name: str, images: list[str], fmt: str, tokens_dim) -> bool:
    """Whether a shard is complete: its image list covers these images and
    the shard holds one sample for each image kept."""
    try:
        with open(os.path.join(out, _sidecar(name)), encoding="utf-8") as f:
            side = json.load(f)
    except (OSError, ValueError):
        return False
    if sorted(side.get("images", []) + side.get("skipped", [])) != sorted(images):
        return False
    return shard_ok(os.path.join(out, name), fmt, len(side["images"]), *tokens_dim)


def _try(fn):
    """fn, returning exceptions instead of raising them (for pool.map)."""

    def wrapped(*a):
        try:
            return fn(*a)
        except Exception as e:  # noqa: BLE001 - reported per image
            return e

    return wrapped


def shard_ok(path: str, fmt: str, n: int, t: int | None, d: int | None) -> bool:
    """Whether a finished shard holds n samples (and t x d tokens when known)."""
    if not os.path.isfile(path):
        return False
    try:
        with open(path, "rb") as f:
            if fmt == "npy":
                head = f.read(10)
                if head[:6] != b"\x93NUMPY":
                    return False
                (hl,) = struct.unpack("<H", head[8:10])
                import ast

                shape = tuple(ast.literal_eval(f.read(hl).decode("latin1"))["shape"])
                hdr = 10 + hl
                itemsize = 2
            else:
                (hl,) = struct.unpack("<Q", f.read(8))
                h = json.loads(f.read(hl))
                shape = tuple(h["tokens"]["shape"])
                hdr = 8 + hl
                itemsize = 2 if h["tokens"]["dtype"] == "F16" else 4
        if len(shape) != 3 or shape[0] != n or (t and shape[1] != t) or (d and shape[2] != d):
            return False
        return os.path.getsize(path) >= hdr + math.prod(shape) * itemsize
    except (OSError, ValueError, KeyError, SyntaxError):
        return False


# ------------------------------------------------------------------ progress ---


class Progress:
    def __init__(self, total: int, done: int):
        self.bar = None
        try:
            from tqdm import tqdm

            self.bar = tqdm(total=total, initial=done, unit="img", file=sys.stderr, dynamic_ncols=True)
        except ImportError:
            pass
        self.total, self.done, self.t0, self.last = total, done, time.time(), 0.0

    def add(self, n: int) -> None:
        self.done += n
        if self.bar is not None:
            self.bar.update(n)
            return
        now = time.time()
        if now - self.last > 2 or self.done == self.total:
            rate = self.done / max(now - self.t0, 1e-9)
            print(f"\r{self.done}/{self.total} images ({rate:.1f}/s)", end="", file=sys.stderr, flush=True)
            self.last = now

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
        else:
            print(file=sys.stderr)


# --------------------------------------------------------------------- main ---


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        description="Run a ViT over images and write token shards [N, T, D] plus a manifest.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split("\n\n", 2)[2],
    )
    p.add_argument("inputs", nargs="+", help="image folders, globs, or list files (.txt/.lst or @FILE)")
    p.add_argument("-o", "--output", required=True, help="output folder for the shards and manifest.jsonl")
    p.add_argument("--model", required=True, help="timm model name, or the local folder of an hf model")
    p.add_argument("--weights", help="weights file (.safetensors or .pth) for timm and builtin")
    p.add_argument("--backend", choices=["auto", "timm", "hf", "builtin"], default="auto")
    p.add_argument("--layer", default="final", help="'final' or a block index (negative from the end); default final")
    p.add_argument("--drop-prefix", action="store_true", help="drop the CLS/register tokens, keep the patch grid")
    p.add_argument("--crop", choices=["center-square", "full", "model"], default="center-square")
    p.add_argument("--size", type=int, default=224, help="input side in pixels (default 224)")
    p.add_argument("--interp", choices=["bicubic", "bilinear", "lanczos", "nearest"], default="bicubic")
    p.add_argument("--mean", type=float, nargs=3, default=IMAGENET_MEAN)
    p.add_argument("--std", type=float, nargs=3, default=IMAGENET_STD)
    p.add_argument("--heads", type=int, default=0, help="attention heads (builtin; default dim/64)")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--shard-size", type=int, default=1024, help="images per shard (default 1024)")
    p.add_argument("--format", choices=["npy", "safetensors"], default="npy")
    p.add_argument("--dtype", choices=["float16", "float32"], default="float16")
    p.add_argument("--device", default="auto", help="auto (cuda when available), cpu, cuda, cuda:1, ...")
    p.add_argument("--tf32", action="store_true", help="allow TF32 matmuls and convolutions on the GPU (faster, less exact)")
    p.add_argument("--workers", type=int, default=min(8, os.cpu_count() or 1), help="image decoding threads")
    p.add_argument("--limit", type=int, default=0, help="use only the first N images")
    p.add_argument("--no-resume", action="store_true", help="recompute every shard")
    p.add_argument("--skip-bad", action="store_true",
                   help="skip images that cannot be read (listed in shard-K.images.json) instead of stopping")
    return p.parse_args(argv)


def settings(args, n_images: int) -> dict:
    keep = ["model", "weights", "backend", "layer", "drop_prefix", "crop", "size", "interp", "mean", "std",
            "shard_size", "format", "dtype"]
    s = {k: getattr(args, k) for k in keep}
    s["mean"], s["std"] = list(s["mean"]), list(s["std"])
    s["weights"] = os.path.abspath(args.weights) if args.weights else None
    s["images"] = n_images
    return s


def main(argv=None) -> int:
    args = parse_args(argv)
    check_weights(args.weights)
    images = list_images(args.inputs)
    if args.limit:
        images = images[: args.limit]
    os.makedirs(args.output, exist_ok=True)
    cfg = settings(args, len(images))
    cfg_path = os.path.join(args.output, "dump.json")
    old = {}
    if os.path.exists(cfg_path) and not args.no_resume:
        with open(cfg_path) as f:
            old = json.load(f)
        old_s = {k: v for k, v in old.items() if k in cfg}
        if old_s != cfg:
            diff = {k: (old_s.get(k), cfg[k]) for k in cfg if old_s.get(k) != cfg[k]}
            raise UsageError(f"{args.output} holds a dump with other settings {diff}; use another folder or --no-resume")

    import numpy as np
    import torch

    device = args.device
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    torch.set_grad_enabled(False)
    if not args.tf32:  # a float32 forward pass, as the reference tokens were made
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
    ext = make_extractor(args, device)
    pre = Preprocess(args, ext.transform)
    out_dtype = np.float16 if args.dtype == "float16" else np.float32

    S = args.shard_size
    n_shards = (len(images) + S - 1) // S
    ext_name = ".npy" if args.format == "npy" else ".safetensors"
    shard_names = [f"shard-{k:05d}{ext_name}" for k in range(n_shards)]
    tokens_dim = (None, None)
    if os.path.exists(cfg_path) and not args.no_resume:
        cfg.update({k: v for k, v in old.items() if k in ("tokens", "dim", "prefix_tokens")})
        tokens_dim = (cfg.get("tokens"), cfg.get("dim"))
    todo = [k for k in range(n_shards)
            if args.no_resume or not _done(args.output, shard_names[k], images[k * S : (k + 1) * S], args.format, tokens_dim)]
    done = sum(min(S, len(images) - k * S) for k in range(n_shards) if k not in set(todo))
    if done:
        print(f"resuming: {n_shards - len(todo)} of {n_shards} shards already done", file=sys.stderr)
    prog = Progress(len(images), done)

    from concurrent.futures import ThreadPoolExecutor

    pool = ThreadPoolExecutor(max_workers=max(1, args.workers))
    meta = {"model": ext.name, "layer": args.layer, "crop": args.crop, "size": args.size}
    try:
        for k in todo:
            lo, hi = k * S, min((k + 1) * S, len(images))
            parts, kept, skipped = [], [], []
            for b in range(lo, hi, args.batch_size):
                paths = images[b : min(b + args.batch_size, hi)]
                xs, ok = [], []
                for path, x in zip(paths, pool.map(_try(pre), paths)):
                    if isinstance(x, Exception):
                        if not args.skip_bad:
                            raise UsageError(f"reading image {path}: {x}")
                        print(f"\nskipping {path}: {x}", file=sys.stderr)
                        skipped.append(path)
                    else:
                        xs.append(x)
                        ok.append(path)
                prog.add(len(paths))
                if not xs:
                    continue
                y = ext(torch.stack(xs).to(device))
                if args.drop_prefix:
                    y = y[:, ext.prefix :]
                parts.append(y.float().cpu().numpy().astype(out_dtype))
                kept += ok
            if not parts:
                raise UsageError(f"shard {k}: no image could be read")
            arr = np.concatenate(parts)
            if out_dtype == np.float16 and not np.isfinite(arr).all():
                raise UsageError(f"shard {k}: tokens overflow float16; use --dtype float32")
            cfg["tokens"], cfg["dim"] = int(arr.shape[1]), int(arr.shape[2])
            cfg["prefix_tokens"] = 0 if args.drop_prefix else int(ext.prefix)
            # The images of the shard, in order, go next to it; the shard
            # itself is written last, so a shard that exists is complete.
            side = os.path.join(args.output, _sidecar(shard_names[k]))
            with open(side + ".tmp", "w", encoding="utf-8") as f:
                json.dump({"images": kept, "skipped": skipped}, f)
            os.replace(side + ".tmp", side)
            write_shard(os.path.join(args.output, shard_names[k]), arr, args.format, meta)
            with open(cfg_path + ".tmp", "w") as f:
                json.dump(cfg, f, indent=1)
            os.replace(cfg_path + ".tmp", cfg_path)
    finally:
        pool.shutdown()
        prog.close()
    if not os.path.exists(cfg_path):
        with open(cfg_path, "w") as f:
            json.dump(cfg, f, indent=1)

    # The manifest maps every image to its shard, its index there and the
    # key `ntc encode SHARD` gives it when run in the output folder.
    man = os.path.join(args.output, "manifest.jsonl")
    n_skipped = 0
    with open(man + ".tmp", "w", encoding="utf-8") as f:
        for k, name in enumerate(shard_names):
            with open(os.path.join(args.output, _sidecar(name)), encoding="utf-8") as g:
                side = json.load(g)
            n_skipped += len(side["skipped"])
            stem = os.path.splitext(name)[0]
            for j, img in enumerate(side["images"]):
                f.write(json.dumps({"image": img, "shard": name, "index": j, "key": f"{stem}#{j}"}) + "\n")
    os.replace(man + ".tmp", man)
    if n_skipped:
        print(f"skipped {n_skipped} unreadable images (listed in the shard-*.images.json files)", file=sys.stderr)
    print(f"{len(images) - n_skipped} images -> {n_shards} shards in {args.output} ({ext.name}, layer {args.layer}, device {device})",
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except UsageError as e:
        print(f"dump_tokens: {e}", file=sys.stderr)
        sys.exit(2)
    except InputError as e:
        print(f"dump_tokens: {e}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)
