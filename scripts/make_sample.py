#!/usr/bin/env python3
"""Cut the small real token fixture that ships with ntc out of the shared data.

internal/sample/deit_tiny_block10_8.npy holds crop 0 (the centre crop) of the
first 8 photos of ../shared/data/tokens/deit_tiny_block10_dev.npy (samples
0, 16, ..., 112; see ../shared/data/README.md for how they were made):
8 x 197 x 192 float16, DeiT-Tiny block 10 output, CLS token first.
Pure Python (no numpy) so it runs anywhere.
"""
import ast
import struct
import sys

SRC = sys.argv[1] if len(sys.argv) > 1 else "../shared/data/tokens/deit_tiny_block10_dev.npy"
DST = sys.argv[2] if len(sys.argv) > 2 else "internal/sample/deit_tiny_block10_8.npy"
PICK = [16 * p for p in range(8)]

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
out = b"".join(body[i * size:(i + 1) * size] for i in PICK)

h = "{'descr': '<f2', 'fortran_order': False, 'shape': (%d, %d, %d), }" % (len(PICK), t, d)
pad = 64 - (10 + len(h) + 1) % 64
h = h + " " * pad + "\n"
with open(DST, "wb") as f:
    f.write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(h)) + h.encode("latin1") + out)
print(f"{DST}: {len(PICK)} x {t} x {d} float16 from {SRC}")
