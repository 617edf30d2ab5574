#!/usr/bin/env bash
# Peak memory of encoding a large dataset of many files: generates synthetic
# CLIP-L-like tokens (1024 dims, 577 tokens; see internal/synth) and encodes
# them with /usr/bin/time -v, printing the peak resident set size.
#   scripts/memtest.sh [GB] [CODEC]     (default: 4 GB, fp16)
set -euo pipefail
cd "$(dirname "$0")/.."
gb=${1:-4}
codec=${2:-fp16}
dir=$(mktemp -d "${TMPDIR:-/tmp}/ntc-memtest.XXXXXX")
trap 'rm -rf "$dir"' EXIT
per_file=100                                  # samples per file, 118 MB each
files=$(( (gb * 1000000000) / (per_file * 577 * 1024 * 2) + 1 ))
go build -o "$dir/ntc" ./cmd/ntc
go run ./scripts/synth -o "$dir/in" -files "$files" -samples "$per_file" -dim 1024 -grid 24
du -sh "$dir/in"
/usr/bin/time -v "$dir/ntc" encode "$dir/in/*.npy" -o "$dir/out.ntcb" --codec "$codec" 2> "$dir/time.txt"
grep -E "Maximum resident|Elapsed" "$dir/time.txt"
ls -l "$dir/out.ntcb"
