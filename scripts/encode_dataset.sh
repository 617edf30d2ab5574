#!/usr/bin/env bash
# Encodes a folder of token shards (written by scripts/dump_tokens.py) into
# one .ntcb file per shard, all with one codec model.
#
# Usage:
#   scripts/encode_dataset.sh TOKENS_DIR OUT_DIR [options] [-- extra 'ntc encode' flags]
#
# Options:
#   --codec NAME      fp16, int8, fp8, int4 or ntc (default ntc)
#   --ratio R         target ratio against float16, for codecs with rate control (default 8 for ntc)
#   --fit-shards N    shards the model is fitted on, spread over the dataset (default 4)
#   --fit-samples N   samples of those shards the fit reads (default: ntc's own default)
#   --jobs J          shards encoded at once (default: the number of CPUs)
#   --ntc PATH        the ntc binary (default: $NTC, else ntc on PATH, else built with go)
#
# Steps:
#   1. Fit: a learned codec (ntc) is fitted once, on --fit-shards shards
#      spread over the dataset, into OUT_DIR/model.ntcm: with 'ntc fit' where
#      the binary has it, else by encoding those shards with the codec and
#      copying the fitted model out (python3 -m ntcb.model extract). Fixed
#      codecs need no model.
#   2. Encode every shard in parallel with that model: OUT_DIR/shard-K.ntcb.
#      ntc runs inside TOKENS_DIR, so sample keys are "shard-K#i": the keys
#      of TOKENS_DIR/manifest.jsonl.
#   3. Verify each output ('ntc verify') and record it in OUT_DIR/.done/.
#      Running the script again skips shards already encoded and verified
#      with the same model and options (and whose input has not changed);
#      delete OUT_DIR/.done to start over.
# The manifest is copied to OUT_DIR with an "ntcb" field per image (the
# file that holds its tokens).
set -euo pipefail

usage() { sed -n '2,31p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }
[ $# -ge 2 ] || usage
TOKENS=$1 OUTDIR=$2
shift 2
CODEC=ntc RATIO="" FIT_SHARDS=4 FIT_SAMPLES="" JOBS=$(nproc 2>/dev/null || echo 2) NTC=${NTC:-}
EXTRA=()
while [ $# -gt 0 ]; do
  case $1 in
    --codec) CODEC=$2; shift 2 ;;
    --ratio) RATIO=$2; shift 2 ;;
    --fit-shards) FIT_SHARDS=$2; shift 2 ;;
    --fit-samples) FIT_SAMPLES=$2; shift 2 ;;
    --jobs) JOBS=$2; shift 2 ;;
    --ntc) NTC=$2; shift 2 ;;
    --) shift; EXTRA=("$@"); break ;;
    -h|--help) usage ;;
    *) echo "encode_dataset: unknown option $1" >&2; usage ;;
  esac
done
[ -d "$TOKENS" ] || { echo "encode_dataset: $TOKENS: no such folder" >&2; exit 2; }
[ "$CODEC" = ntc ] && [ -z "$RATIO" ] && RATIO=8
mkdir -p "$OUTDIR/.done"
OUTDIR=$(cd "$OUTDIR" && pwd)
TOKENS=$(cd "$TOKENS" && pwd)
HERE=$(cd "$(dirname "$0")/.." && pwd)
PY=${PYTHON:-/usr/bin/python3}
[ -x "$PY" ] || PY=python3

# The ntc binary.
if [ -z "$NTC" ]; then
  if command -v ntc >/dev/null 2>&1; then
    NTC=$(command -v ntc)
  elif command -v go >/dev/null 2>&1 && [ -f "$HERE/cmd/ntc/main.go" ]; then
    echo "building ntc" >&2
    (cd "$HERE" && go build -o "$OUTDIR/.done/ntc" ./cmd/ntc)
    NTC=$OUTDIR/.done/ntc
  else
    echo "encode_dataset: no ntc binary: set NTC or --ntc, or put ntc on PATH" >&2
    exit 2
  fi
fi

case $NTC in
  */*) NTC=$(cd "$(dirname "$NTC")" && pwd)/$(basename "$NTC") ;;  # it runs in other folders
esac
[ -x "$NTC" ] || NTC=$(command -v "$NTC") || { echo "encode_dataset: no ntc binary at $NTC" >&2; exit 2; }

# The shards, in order.
mapfile -t SHARDS < <(cd "$TOKENS" && ls -1 | grep -E '\.(npy|safetensors)$' | sort)
[ ${#SHARDS[@]} -gt 0 ] || { echo "encode_dataset: no .npy or .safetensors shards in $TOKENS" >&2; exit 2; }
N=${#SHARDS[@]}

RATE=()
[ -n "$RATIO" ] && RATE=(--ratio "$RATIO")
FITN=()
[ -n "$FIT_SAMPLES" ] && FITN=(--fit-samples "$FIT_SAMPLES")

# 1. Fit one model on shards spread over the dataset.
MODEL=()
LEARNED=0
[ "$CODEC" = ntc ] && LEARNED=1
if [ "$LEARNED" = 1 ]; then
  M=$OUTDIR/model.ntcm
  k=$(( FIT_SHARDS < N ? FIT_SHARDS : N ))
  FIT=()
  for ((j = 0; j < k; j++)); do FIT+=("${SHARDS[$(( j * N / k ))]}"); done
  fitkey="codec=$CODEC ratio=$RATIO fit=${FIT[*]} fitn=$FIT_SAMPLES extra=${EXTRA[*]:-}"
  if [ -f "$M" ] && [ "$(cat "$OUTDIR/.done/model.key" 2>/dev/null)" = "$fitkey" ]; then
    echo "model: $M (already fitted)" >&2
  else
    rm -f "$OUTDIR/.done/"*.ok
    echo "fitting $CODEC on ${#FIT[@]} of $N shards: ${FIT[*]}" >&2
    if "$NTC" --help 2>/dev/null | grep -qE '^[[:space:]]+fit[[:space:]]'; then
      (cd "$TOKENS" && "$NTC" fit "${FIT[@]}" -o "$M" --codec "$CODEC" "${RATE[@]}" "${FITN[@]}" "${EXTRA[@]}")
    else
      # No 'fit' verb in this ntc: encode the fit shards and keep the model.
      (cd "$TOKENS" && "$NTC" encode "${FIT[@]}" -o "$OUTDIR/.done/fit.ntcb" -q --codec "$CODEC" "${RATE[@]}" "${FITN[@]}" "${EXTRA[@]}")
      PYTHONPATH="$HERE/python${PYTHONPATH:+:$PYTHONPATH}" "$PY" -m ntcb.model extract "$OUTDIR/.done/fit.ntcb" "$M"
      rm -f "$OUTDIR/.done/fit.ntcb"
    fi
    echo "$fitkey" >"$OUTDIR/.done/model.key"
  fi
  MODEL=(--model "$M")
  RATE=()  # the model carries its rate
fi

# 2 and 3. Encode and verify every shard that is not done yet.
stamp() {  # what a finished shard's record holds: input size and time, model, options
  local s=$1
  echo "$(stat -c '%s %Y' "$TOKENS/$s") codec=$CODEC ${MODEL[*]:+model=$(cksum <"$OUTDIR/model.ntcm")} ${RATE[*]:-} ${EXTRA[*]:-}"
}
TODO=()
for s in "${SHARDS[@]}"; do
  base=${s%.*}
  if [ -f "$OUTDIR/$base.ntcb" ] && [ "$(cat "$OUTDIR/.done/$base.ok" 2>/dev/null)" = "$(stamp "$s")" ]; then
    continue
  fi
  TODO+=("$s")
done
echo "encoding ${#TODO[@]} of $N shards ($(( N - ${#TODO[@]} )) already done), $JOBS at a time" >&2
WORKERS=$(( $(nproc 2>/dev/null || echo 2) / JOBS ))
[ "$WORKERS" -ge 1 ] || WORKERS=1
export NTC TOKENS OUTDIR CODEC WORKERS
encode_one() {
  local s=$1 base=${1%.*}
  (cd "$TOKENS" && "$NTC" encode "$s" -o "$OUTDIR/$base.ntcb" -q --workers "$WORKERS" "${@:2}") &&
    "$NTC" verify "$OUTDIR/$base.ntcb" >/dev/null &&
    echo "$base"
}
export -f encode_one
FAILED=0
if [ ${#TODO[@]} -gt 0 ]; then
  printf '%s\0' "${TODO[@]}" |
    xargs -0 -P "$JOBS" -I{} bash -c 'encode_one "$@"' _ {} --codec "$CODEC" "${MODEL[@]}" "${RATE[@]}" "${EXTRA[@]}" |
    while read -r base; do
      for s in "${TODO[@]}"; do
        [ "${s%.*}" = "$base" ] && stamp "$s" >"$OUTDIR/.done/$base.ok"
      done
      echo "  $base.ntcb" >&2
    done || FAILED=1
fi
for s in "${SHARDS[@]}"; do
  [ -f "$OUTDIR/.done/${s%.*}.ok" ] || { echo "encode_dataset: ${s%.*} failed" >&2; FAILED=1; }
done

# The manifest, with the .ntcb file of every image.
if [ -f "$TOKENS/manifest.jsonl" ]; then
  "$PY" - "$TOKENS/manifest.jsonl" "$OUTDIR/manifest.jsonl" <<'EOF'
import json, os, sys
src, dst = sys.argv[1:]
with open(src, encoding="utf-8") as f, open(dst + ".tmp", "w", encoding="utf-8") as g:
    for line in f:
        e = json.loads(line)
        e["ntcb"] = os.path.splitext(e["shard"])[0] + ".ntcb"
        g.write(json.dumps(e) + "\n")
os.replace(dst + ".tmp", dst)
EOF
fi
[ "$FAILED" = 0 ] || exit 1
echo "done: $N shards in $OUTDIR" >&2
