#!/usr/bin/env bash
# Checks the CUDA decoder on a GPU machine and measures it: the differential
# tests of pkg/cuda, then 'ntc bench --device cuda' on two token sets, then
# 'ntc decode --device cuda' against the CPU decoder. Runs from the
# repository root with binaries built elsewhere (no Go, no network; needs
# python3 with numpy):
#
#   bin/ntc-cuda, bin/cuda.test   scripts/build-cuda.sh
#   bin/synth                     go build -o bin/synth ./scripts/synth
#
#   scripts/gpu-check.sh
#
# Token sets (262144 tokens or more each):
#   synth1024  synthetic CLIP-like tokens, D=1024, 576 tokens (24x24 grid, no
#              prefix), 456 samples
#   block10    real tokens, D=192, from $REAL_NPY or data/block10_256k.npy
#              when one exists (the shared deit_tiny_block10_dev.npy, 192
#              samples, is repeated 7 times: carry it, it is 14.5 MB); else
#              synth192: synthetic, D=192, 197 tokens (1 prefix + 14x14
#              grid), 1331 samples
# Each is encoded with the learned codec at ratio 8 (D=192: also by 'ntc
# encode', to check --ntcb and decode --device cuda).
#
# With the project's device tool, from a checkout on the build machine:
#   scripts/build-cuda.sh
#   mkdir -p .gpu && cp ../shared/data/tokens/deit_tiny_block10_dev.npy .gpu/
#   run: command 'REAL_NPY=.gpu/deit_tiny_block10_dev.npy scripts/gpu-check.sh',
#        carry ["bin", ".gpu"] (both are ignored by git), timeout about 540 s
#
# Environment: OUT (logs and JSON; default /tmp/gpu-check), WORK (token
# files, .ntcb files and decoded outputs, which are large; default
# /tmp/gpu-check-work), REAL_NPY, PYTHON (default python3), GPU (ordinal,
# default 0).
# Prints a table LAST: one row per token set with the figures and PASS/FAIL
# for the three goals (differential tests pass, kernel/copy >= 0.5, speedup
# over the .npy >= 3), then the decode check. Exits 1 when the tests fail,
# a bench or decode command fails, or the decode check fails; a goal that
# is missed shows as FAIL in the table without changing the exit code.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 2

export LD_LIBRARY_PATH=/usr/local/cuda/targets/x86_64-linux/lib:${LD_LIBRARY_PATH:-}
OUT=${OUT:-/tmp/gpu-check}
WORK=${WORK:-/tmp/gpu-check-work}
PY=${PYTHON:-python3}
GPU=${GPU:-0}
mkdir -p "$OUT" "$WORK"
export TMPDIR=$WORK
NTC=bin/ntc-cuda
status=0

for b in bin/ntc-cuda bin/cuda.test bin/synth; do
  if [ ! -x "$b" ]; then
    echo "gpu-check: missing $b (see the header of $0)" >&2
    exit 2
  fi
done

step() { echo; echo "== $* ($(date +%T))"; }

step "machine"
nvidia-smi -L 2>&1 | tee "$OUT/nvidia-smi.txt"
nproc

step "differential tests: pkg/cuda"
(cd pkg/cuda && timeout 240 ../../bin/cuda.test -test.v -test.count=1) >"$OUT/cuda-test.log" 2>&1
test_rc=$?
grep -E '^(--- |ok|FAIL|PASS)' "$OUT/cuda-test.log" | tail -40
echo "cuda.test exit $test_rc (log: $OUT/cuda-test.log)"
[ "$test_rc" -eq 0 ] || status=1
echo "$test_rc" >"$OUT/cuda-test.rc"

step "token sets"
synth() { # NAME DIM GRID PREFIX SAMPLES
  local dst=$WORK/$1.npy
  if [ ! -f "$dst" ]; then
    bin/synth -o "$WORK/$1.d" -files 1 -samples "$5" -dim "$2" -grid "$3" -prefix "$4" &&
      mv "$WORK/$1.d/synth-00000.npy" "$dst" && rmdir "$WORK/$1.d"
  fi
}
synth synth1024 1024 24 0 456 || status=1
real=""
if [ -n "${REAL_NPY:-}" ] && [ -f "$REAL_NPY" ]; then
  real=$REAL_NPY
elif [ -f data/block10_256k.npy ]; then
  real=data/block10_256k.npy
fi
flags192=()
if [ -n "$real" ]; then
  name192=block10
  file192=$real
  # Fewer than 262144 tokens (the shared dev file has 192 samples): the
  # samples repeated until there are enough, and said so.
  reps=$("$PY" -c 'import sys, numpy as np; a = np.load(sys.argv[1], mmap_mode="r"); print(-(-262144 // (a.shape[0] * a.shape[1])))' "$real")
  if [ "${reps:-1}" -gt 1 ]; then
    file192=$WORK/block10_x$reps.npy
    "$PY" -c 'import sys, numpy as np; a = np.load(sys.argv[1]); np.save(sys.argv[2], np.concatenate([a] * int(sys.argv[3])).astype(np.float16))' "$real" "$file192" "$reps" || status=1
    name192=block10x$reps
  fi
  echo "D=192: real tokens $real, repeated ${reps:-1} times"
else
  synth synth192 192 14 1 1331 || status=1
  name192=synth192
  file192=$WORK/synth192.npy
  flags192=(--prefix-tokens 1 --grid 14x14)
  echo "D=192: no real tokens (REAL_NPY, data/block10_256k.npy): synthetic"
fi
ls -l "$WORK"/*.npy "$real" 2>/dev/null

bench() { # NAME FILE [FLAGS...]
  local name=$1 file=$2
  shift 2
  echo "$NTC bench --device cuda --gpu $GPU $file --ratios 8 --json $*"
  if timeout 240 "$NTC" bench --device cuda --gpu "$GPU" "$file" --ratios 8 --json "$@" \
    >"$OUT/bench-$name.json" 2>"$OUT/bench-$name.err"; then
    cat "$OUT/bench-$name.json"
  else
    echo "gpu-check: bench $name failed:" >&2
    cat "$OUT/bench-$name.err" >&2
    rm -f "$OUT/bench-$name.json"
    status=1
  fi
}

step "bench synth1024"
bench synth1024 "$WORK/synth1024.npy" --prefix-tokens 0 --grid 24x24

# D=192: encoded once by 'ntc encode', then benched with --ntcb and
# decoded on the GPU and the CPU.
step "encode $name192"
ntcb192=$WORK/$name192.ntcb
timeout 120 "$NTC" encode "$file192" -o "$ntcb192" --ratio 8 "${flags192[@]}" 2>&1 | tee "$OUT/encode-$name192.txt" ||
  status=1

step "bench $name192"
bench "$name192" "$file192" --ntcb "$ntcb192"

step "decode --device cuda vs the CPU: $name192"
# Some whole chunks, single samples out of order, one twice.
n192=$("$PY" -c 'import sys, numpy as np; print(np.load(sys.argv[1], mmap_mode="r").shape[0])' "$file192")
sel=0-99,$((n192 / 2)),3,$((n192 - 11))-$((n192 - 1)),3
dec_ok=1
for dt in float16 float32; do
  for dev in cuda cpu; do
    args=(decode "$ntcb192" -o "$WORK/dec-$dev-$dt.npy" --samples "$sel" --dtype "$dt")
    [ "$dev" = cuda ] && args+=(--device cuda --gpu "$GPU")
    echo "$NTC ${args[*]}"
    timeout 120 "$NTC" "${args[@]}" 2>&1 | tee -a "$OUT/decode.txt"
    [ "${PIPESTATUS[0]}" -eq 0 ] || dec_ok=0
  done
done
"$PY" - "$WORK" "$OUT/decode-check.json" "$dec_ok" <<'EOF' || status=1
import json, sys
import numpy as np
work, out, ok = sys.argv[1], sys.argv[2], sys.argv[3] == "1"
res = {"ok": ok, "max_rel_err": None, "shape": None}
if ok:
    worst = 0.0
    for dt in ("float16", "float32"):
        g = np.load(f"{work}/dec-cuda-{dt}.npy")
        c = np.load(f"{work}/dec-cpu-{dt}.npy")
        if g.shape != c.shape or g.dtype != c.dtype or str(g.dtype) != dt:
            print(f"decode {dt}: cuda {g.shape} {g.dtype}, cpu {c.shape} {c.dtype}")
            ok = False
            continue
        g, c = g.astype(np.float64), c.astype(np.float64)
        num = np.sqrt(((g - c) ** 2).sum(axis=(1, 2)))
        den = np.maximum(np.sqrt((c ** 2).sum(axis=(1, 2))), 1e-30)
        rel = float((num / den).max())
        print(f"decode {dt}: {g.shape}, max rel err per sample {rel:.3g}")
        worst = max(worst, rel)
        res["shape"] = list(g.shape)
    res["max_rel_err"] = worst
    ok = ok and worst < 1e-3
res["ok"] = ok
json.dump(res, open(out, "w"))
sys.exit(0 if ok else 1)
EOF

step "summary"
"$PY" - "$OUT" "$test_rc" synth1024 "$name192" <<'EOF'
import json, os, sys
out, test_rc, names = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
tests = "PASS" if test_rc == 0 else "FAIL"
cols = ["set", "device", "D", "tokens", "ratio", "kernel GB/s", "+entropy GB/s", "copy GB/s", "kern/copy",
        "e2e ntcb GB/s", "e2e (cpu ent.)", "e2e npy GB/s", "speedup", "max rel err", "tests", "k/c>=0.5", "speedup>=3"]
rows = []
for n in names:
    try:
        r = json.load(open(os.path.join(out, f"bench-{n}.json")))
    except (OSError, ValueError):
        rows.append([n, "bench failed"] + ["-"] * (len(cols) - 5) + [tests, "FAIL", "FAIL"])
        continue
    kc, sp = r["kernel_vs_copy"], r["speedup_vs_npy"]
    rows.append([n, r["device"], r["dim"], r["samples"] * r["tokens_per_sample"], f'{r["ratio"]:.2f}',
                 f'{r["kernel_gbps"]:.1f}', f'{r["device_gbps"]:.1f}', f'{r["copy_gbps"]:.1f}', f"{kc:.2f}",
                 f'{r["e2e_ntcb_gbps"]:.2f}', f'{r["e2e_ntcb_host_gbps"]:.2f}', f'{r["e2e_npy_gbps"]:.2f}', f"{sp:.2f}",
                 f'{r["max_rel_err"]:.2e}', tests, "PASS" if kc >= 0.5 else "FAIL", "PASS" if sp >= 3 else "FAIL"])
w = [max(len(str(x)) for x in col) for col in zip(cols, *rows)]
for row in [cols] + rows:
    print("  ".join(str(x).rjust(k) for x, k in zip(row, w)))
try:
    d = json.load(open(os.path.join(out, "decode-check.json")))
    err = "-" if d["max_rel_err"] is None else f'{d["max_rel_err"]:.2e}'
    print(f'decode --device cuda vs cpu ({names[-1]}, float16 and float32): {"PASS" if d["ok"] else "FAIL"}, max rel err {err}')
except (OSError, ValueError):
    print("decode --device cuda vs cpu: FAIL (no result)")
EOF
exit "$status"
