#!/usr/bin/env python3
"""Cut the real token samples that ship with ntc out of the shared data.

Both hold DeiT-Tiny (ImageNet-1k) block-10 output, float16, 197 tokens
(CLS first, then the 14x14 patch grid) x 192 dims, taken from
../shared/data/tokens/deit_tiny_block10_dev.npy, whose sample 16 * photo +
crop is crop `crop` of photo `photo` (../shared/data/README.md says how the
photos, crops and tokens were made):

- internal/sample/deit_tiny_block10_48.npy, the default bench's input:
  crops 0-3 of each of the 12 photos, crop-major (sample 12 * crop + photo),
  48 x 197 x 192 (3.6 MB). Crop 0 is the centre crop; crops 1-3 are random
  squares, crops 1 and 3 flipped.
- internal/sample/deit_tiny_block10_8.npy, the small fixture of tests and
  golden files: crop 0 of the first 8 photos, 8 x 197 x 192; the same bytes
  as the first 8 samples of the 48.

Pure Python (no numpy) so it runs anywhere.
Usage: scripts/make_sample.py [SHARED_BLOCK10_NPY [OUT_DIR]]
"""
import ast
import os
import struct
import sys

SRC = sys.argv[1] if len(sys.argv) > 1 else "../shared/data/tokens/deit_tiny_block10_dev.npy"
OUT = sys.argv[2] if len(sys.argv) > 2 else "internal/sample"
FILES = {
    "deit_tiny_block10_48.npy": [16 * p + c for c in range(4) for p in range(12)],
    "deit_tiny_block10_8.npy": [16 * p for p in range(8)],
}

with open(SRC, "rb") as f:
    data = f.read()
assert data[:6] == b"\x93NUMPY", "not an npy file"
major = data[6]
if major == 1:
    (hlen,) = struct.unpack("<H", data[8:10])
    start = 10
else:
    (hlen,) = struct.unpack("<I", data[8:12])
    start = 12
header = ast.literal_eval(data[start:start + hlen].decode("latin1"))
assert header["descr"] == "<f2" and not header["fortran_order"], header
n, t, d = header["shape"]
body = data[start + hlen:]
size = t * d * 2

for name, pick in FILES.items():
    out = b"".join(body[i * size:(i + 1) * size] for i in pick)
    h = "{'descr': '<f2', 'fortran_order': False, 'shape': (%d, %d, %d), }" % (len(pick), t, d)
    pad = 64 - (10 + len(h) + 1) % 64
    h = h + " " * pad + "\n"
    dst = os.path.join(OUT, name)
    with open(dst, "wb") as f:
        f.write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(h)) + h.encode("latin1") + out)
    print(f"{dst}: {len(pick)} x {t} x {d} float16 from {SRC}")
