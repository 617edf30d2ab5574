#!/usr/bin/env bash
# A thin wrapper of scripts/encode_dataset.py for the old command line:
#
#   scripts/encode_dataset.sh TOKENS_DIR OUT_DIR [encode_dataset.py options] [-- 'ntc encode' flags]
#
# is scripts/encode_dataset.py TOKENS_DIR -o OUT_DIR [options] [-- flags]: every
# token file of TOKENS_DIR becomes a shard of the dataset OUT_DIR (index.json,
# model.ntcm, shard-*.ntcb), on Dask when it is installed. Without --ntc, $NTC
# or ntc on PATH, ntc is built with go first.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
PY=${PYTHON:-/usr/bin/python3}
[ -x "$PY" ] || PY=python3
case "${1:-}" in
  -h|--help|"")
    echo "usage: encode_dataset.sh TOKENS_DIR OUT_DIR [options] [-- 'ntc encode' flags]"
    echo "  (the same as: encode_dataset.py TOKENS_DIR -o OUT_DIR [options]; its help follows)"
    echo
    exec "$PY" "$HERE/encode_dataset.py" --help
    ;;
esac
if [ $# -lt 2 ]; then
  echo "encode_dataset.sh: want TOKENS_DIR OUT_DIR (see --help)" >&2
  exit 2
fi
TOKENS=$1 OUT=$2
shift 2
args=("$@")
if [[ " ${args[*]:-} " != *" --ntc "* ]] && [ -z "${NTC:-}" ] && ! command -v ntc >/dev/null 2>&1; then
  GO=$(command -v go || echo /usr/local/go/bin/go)
  [ -x "$GO" ] || { echo "encode_dataset.sh: no ntc: give --ntc PATH, set NTC, or put ntc on PATH" >&2; exit 2; }
  mkdir -p "$OUT"
  echo "encode_dataset.sh: building ntc" >&2
  (cd "$HERE/.." && "$GO" build -o "$OUT/.ntc-build" ./cmd/ntc)
  trap 'rm -f "$OUT/.ntc-build"' EXIT
  export NTC=$OUT/.ntc-build
fi
"$PY" "$HERE/encode_dataset.py" "$TOKENS" -o "$OUT" "${args[@]}"
