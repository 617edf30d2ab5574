"""CRC-32C (Castagnoli), the checksum of every .ntcb block.

Reflected polynomial 0x82F63B78, initial value and final XOR 0xFFFFFFFF (Go's
crc32.Checksum with crc32.Castagnoli). The check value of b"123456789" is
0xE3069283.

``crc32c(data)`` uses the C extension of the ``crc32c`` package when it is
installed (Debian: python3-crc32c) and otherwise a numpy implementation that
runs many lanes of the table-driven CRC side by side and joins them with the
CRC's linearity, so that checking a large chunk stays fast without any
compiled dependency.
"""

from __future__ import annotations

import numpy as np

POLY = 0x82F63B78


def _make_table() -> list[int]:
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ POLY if c & 1 else c >> 1
        table.append(c)
    return table


_TABLE = _make_table()
_TABLE_NP = np.array(_TABLE, dtype=np.uint32)


def _update_py(reg: int, data) -> int:
    """Runs the raw CRC register over data (no initial or final XOR)."""
    t = _TABLE
    for b in data:
        reg = t[(reg ^ b) & 0xFF] ^ (reg >> 8)
    return reg


# Linear maps of the CRC register are 32x32 matrices over GF(2), held as
# 32 columns: column i is the image of bit i.


def _apply(cols: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Applies the map to every register in x (uint32 array)."""
    out = np.zeros_like(x)
    for i in range(32):
        bit = (x >> np.uint32(i)) & np.uint32(1)
        out ^= bit * cols[i]
    return out


def _compose(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Returns the map a after b."""
    return _apply(a, b)


def _zeros_map(nbytes: int) -> np.ndarray:
    """Returns the map of running the register over nbytes zero bytes."""
    one = np.array([_update_py(1 << i, b"\x00") for i in range(32)], dtype=np.uint32)
    result = np.array([1 << i for i in range(32)], dtype=np.uint32)  # identity
    while nbytes:
        if nbytes & 1:
            result = _compose(one, result)
        one = _compose(one, one)
        nbytes >>= 1
    return result


_LANE = 256  # bytes per lane in the numpy path
_SMALL = 1 << 14  # below this many bytes the plain loop is faster


def _update_np(reg: int, data) -> int:
    buf = np.frombuffer(data, dtype=np.uint8)
    lanes = len(buf) // _LANE
    body = buf[: lanes * _LANE].reshape(lanes, _LANE)
    regs = np.zeros(lanes, dtype=np.uint32)
    regs[0] = reg
    t = _TABLE_NP
    for k in range(_LANE):
        regs = t[(regs ^ body[:, k]) & np.uint32(0xFF)] ^ (regs >> np.uint32(8))
    # reg(A || B) = Z_len(B)(reg(A)) ^ reg0(B): join neighbouring lanes in a
    # tree, doubling the zero-run map at every level.
    zmap = _zeros_map(_LANE)
    while len(regs) > 1:
        if len(regs) & 1:
            # A lane of value 0 in front is neutral: it stands for zero bytes
            # run from a zero register, and lane 0 already holds the real one.
            regs = np.concatenate([np.zeros(1, dtype=np.uint32), regs])
        regs = _apply(zmap, regs[0::2]) ^ regs[1::2]
        zmap = _compose(zmap, zmap)
    return _update_py(int(regs[0]), bytes(buf[lanes * _LANE :]))


def crc32c_numpy(data, value: int = 0) -> int:
    """CRC-32C of data, continuing from a previous CRC value."""
    reg = value ^ 0xFFFFFFFF
    n = len(data)
    if n < _SMALL:
        reg = _update_py(reg, bytes(data))
    else:
        reg = _update_np(reg, data)
    return reg ^ 0xFFFFFFFF


try:  # pragma: no cover - depends on the installed packages
    import crc32c as _crc32c_ext

    def crc32c(data, value: int = 0) -> int:
        """CRC-32C of data (C extension)."""
        return _crc32c_ext.crc32c(data, value)

    HAVE_EXT = True
except ImportError:  # pragma: no cover
    crc32c = crc32c_numpy
    HAVE_EXT = False
