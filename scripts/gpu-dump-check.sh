#!/usr/bin/env bash
# Checks scripts/dump_tokens.py against the project's reference tokens: it
# dumps DeiT-Tiny tokens of crop 0 (the centre square, 224x224, PIL bicubic)
# of the 12 photos of ../shared/data/README.md, for the final layer and for
# block 10 (--layer -2), and compares them with samples 0, 16, ..., 176 of
# the shared token files: every token of every photo must have cosine > 0.999.
#
# Usage (from the repository root; needs python3 with torch, plus timm for
# the timm backend; no Go, no network):
#
#   scripts/gpu-dump-check.sh WEIGHTS FINAL.npy BLOCK10.npy [PHOTOS_DIR]
#
#   WEIGHTS      deit_tiny_patch16_224.safetensors
#   FINAL.npy    deit_tiny_final_dev.npy   [192, 197, 192], or just its 12
#   BLOCK10.npy  deit_tiny_block10_dev.npy  crop-0 samples [12, 197, 192]
#   PHOTOS_DIR   the 12 photos (default out-images/): astronaut.png
#                chelsea.png coffee.png motorcycle_left.png grass.png
#                gravel.png brick.png coins.png camera.png
#                hubble_deep_field.jpg retina.jpg china.jpg
#
# Environment: BACKENDS (default "timm builtin": each is checked; a backend
# that cannot load, e.g. timm where it is not installed, is reported as
# SKIP), DEVICE (default auto: cuda when available), PYTHON (default
# python3), OUT (logs and the dumped tokens go there when set).
# Then checks python/ntcb's read_torch on the device against the golden
# files (testdata/golden). Prints per photo the min and mean cosine, then a
# PASS/FAIL table last. Exits 0 when every check that ran passed and at
# least one backend ran, 1 otherwise.
set -uo pipefail
cd "$(dirname "$0")/.."

if [ $# -lt 3 ]; then
  sed -n '2,30p' "$0" | sed 's/^# \{0,1\}//'
  exit 2
fi
WEIGHTS=$1 FINAL=$2 BLOCK10=$3 PHOTOS=${4:-out-images}
PY=${PYTHON:-python3}
BACKENDS=${BACKENDS:-timm builtin}
DEVICE=${DEVICE:-auto}
WORK=${OUT:-$(mktemp -d)}/gpu-dump-check
mkdir -p "$WORK"
export PYTHONDONTWRITEBYTECODE=1

PHOTO_NAMES="astronaut.png chelsea.png coffee.png motorcycle_left.png grass.png gravel.png brick.png coins.png camera.png hubble_deep_field.jpg retina.jpg china.jpg"
LIST=$WORK/photos.txt
: >"$LIST"
for p in $PHOTO_NAMES; do
  if [ ! -f "$PHOTOS/$p" ]; then
    echo "missing photo $PHOTOS/$p" >&2
    exit 2
  fi
  echo "$(cd "$PHOTOS" && pwd)/$p" >>"$LIST"
done
for f in "$WEIGHTS" "$FINAL" "$BLOCK10"; do
  [ -f "$f" ] || { echo "missing $f" >&2; exit 2; }
done

{
  echo "== machine"
  uname -a
  "$PY" -c 'import torch; print("torch", torch.__version__, "cuda", torch.cuda.is_available(), torch.cuda.get_device_name(0) if torch.cuda.is_available() else "")' 2>&1
  "$PY" -c 'import timm; print("timm", timm.__version__)' 2>&1 || true
} | tee "$WORK/machine.log"

RESULTS=$WORK/results.txt
: >"$RESULTS"
for backend in $BACKENDS; do
  for layer in final -2; do
    name=$backend-${layer/#-/m}
    out=$WORK/$name
    echo "== dump: backend $backend, layer $layer"
    if ! "$PY" scripts/dump_tokens.py "@$LIST" -o "$out" --backend "$backend" --device "$DEVICE" \
      --model deit_tiny_patch16_224 --weights "$WEIGHTS" --layer "$layer" \
      --crop center-square --size 224 --interp bicubic --shard-size 16 --batch-size 12 --no-resume \
      >"$out.log" 2>&1; then
      tail -5 "$out.log"
      echo "$backend $layer SKIP (dump_tokens.py failed: see $out.log)" >>"$RESULTS"
      continue
    fi
    tail -1 "$out.log"
    ref=$FINAL
    [ "$layer" = final ] || ref=$BLOCK10
    "$PY" - "$out/shard-00000.npy" "$ref" "$backend" "$layer" "$RESULTS" <<'EOF' 2>&1 | tee "$out.compare.log"
import sys
import numpy as np

got_path, ref_path, backend, layer, results = sys.argv[1:]
names = ["astronaut", "chelsea", "coffee", "motorcycle_left", "grass", "gravel", "brick", "coins", "camera",
         "hubble_deep_field", "retina", "china"]
got = np.load(got_path).astype(np.float64)
ref = np.load(ref_path, mmap_mode="r")
if ref.shape[0] == 192:
    ref = ref[0::16]  # sample = 16 * photo + crop; crop 0 is the centre square
ref = np.asarray(ref, dtype=np.float64)
assert got.shape == ref.shape == (12, 197, 192), (got.shape, ref.shape)
num = (got * ref).sum(-1)
cos = num / (np.linalg.norm(got, axis=-1) * np.linalg.norm(ref, axis=-1) + 1e-12)
print(f"{'photo':<18} {'min cos':>10} {'1 - min cos':>11} {'mean cos':>10}  worst token   ({backend}, layer {layer})")
for i, n in enumerate(names):
    print(f"{n:<18} {cos[i].min():10.7f} {1 - cos[i].min():11.2e} {cos[i].mean():10.7f}  {int(cos[i].argmin()):>5}")
ok = bool((cos > 0.999).all())
err = np.abs(got - ref).max()
line = (f"{backend} {layer} {'PASS' if ok else 'FAIL'} min_cos={cos.min():.7f} (1-min={1 - cos.min():.2e}) "
        f"mean_cos={cos.mean():.7f} max_abs_err={err:.4g}")
print(line)
with open(results, "a") as f:
    f.write(line + "\n")
EOF
  done
done

# The reader's torch path on the device (python/ntcb, numpy only; fp16
# files also need zstandard): the learned codec's inverse transform runs in
# torch there and must match the Go decoder's output.
echo "== reader: read_torch on the device for every golden file"
PYTHONPATH=python "$PY" - "$RESULTS" "$DEVICE" <<'EOF' 2>&1 | tee "$WORK/reader.log"
import glob, sys
import numpy as np
results, device = sys.argv[1:]
try:
    import torch
    import ntcb
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    worst, names = 0.0, []
    for p in sorted(glob.glob("testdata/golden/*.ntcb")):
        name = p.split("/")[-1][:-5]
        try:
            r = ntcb.open(p)
            t = r.read_torch(list(range(len(r))), device=device)
        except ImportError as e:  # zstandard, for fp16
            print(f"{name}: skipped ({e})")
            continue
        want = np.load(p[:-5] + ".decoded.npy")
        got = t.cpu().numpy()
        rel = float((np.abs(got - want).max(-1) / (np.linalg.norm(want, axis=-1) + 1e-6)).max())
        print(f"{name}: {t.device}, max error relative to the token norm {rel:.3g}")
        worst, names = max(worst, rel), names + [name]
    ok = bool(names) and worst < 1e-3
    line = f"reader {device} {'PASS' if ok else 'FAIL'} codecs={','.join(names)} max_rel_err={worst:.3g}"
except Exception as e:  # noqa: BLE001
    line = f"reader {device} SKIP ({type(e).__name__}: {e})"
print(line)
with open(results, "a") as f:
    f.write(line + "\n")
EOF

echo
echo "== gpu-dump-check: PASS needs cosine > 0.999 for every token of crop 0 of each photo;"
echo "   the reader row: python/ntcb's read_torch on the device decodes the golden files as Go does"
printf '%-8s %-6s %s\n' backend layer result
status=0
ran=0
while read -r b l r rest; do
  printf '%-8s %-6s %s %s\n' "$b" "$l" "$r" "$rest"
  case $r in
    PASS) [ "$b" = reader ] || ran=1 ;;
    FAIL) status=1 ;;
  esac
done <"$RESULTS"
[ "$ran" = 1 ] || status=1
if [ "$status" = 0 ]; then echo "RESULT: PASS"; else echo "RESULT: FAIL"; fi
exit "$status"
