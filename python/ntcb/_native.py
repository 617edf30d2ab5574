"""The native decoder: libntcb.so, the Go reader of pkg/ntcb built as a C
shared library (cmd/libntcb), loaded with ctypes.

It is loaded lazily, by the first read that decodes samples in a process,
never by ``import ntcb`` or by opening a file: the Go runtime inside it does
not survive ``fork()``, and PyTorch's DataLoader forks its workers by
default. A process forked from one that had loaded it must not call into
it (the call would hang); such a process gets ForkError, which names the
remedies. A forked process whose parent never loaded it loads its own copy.

Which decoder reads the samples is set by the environment variable
NTCB_DECODER (read when the first sample is decoded):

- ``auto`` (the default): native when libntcb.so is present, else the
  pure-Python reference decoder with a one-time RuntimeWarning;
- ``native``: native, and an error where it cannot be loaded;
- ``python``: always the pure-Python decoder, silently.

ctypes calls release the GIL, so threads decode in parallel.
"""

from __future__ import annotations

import ctypes
import errno
import os
import sys
import threading
import warnings

import numpy as np

from . import errors as _errors

LIBRARY_NAME = "libntcb.so"
CUDA_LIBRARY_NAME = "libntcb_cuda.so"  # the CUDA build (scripts/build-python.sh --cuda)
ABI_VERSION = 1

MODES = ("auto", "native", "python")


class ForkError(RuntimeError):
    """This process was forked from one that had loaded the native decoder."""


class NativeUnavailable(RuntimeError):
    """NTCB_DECODER=native (or decoder="native"), and libntcb.so cannot be loaded."""


# Codes of the C ABI (cmd/libntcb/exports.go) and the exceptions they raise.
_NTCB_ERRORS = {
    1: _errors.BadMagic,
    2: _errors.UnsupportedVersion,
    3: _errors.ChecksumError,
    4: _errors.TruncatedError,
    5: _errors.TooLargeError,
    6: _errors.UnknownCodecError,
    7: _errors.NotFound,
    8: _errors.CorruptError,
    14: _errors.ExternalModel,
}
_E_NOFILE, _E_PERMISSION, _E_IO, _E_ARGUMENT, _E_INTERNAL = 9, 10, 11, 12, 13

FLOAT32, FLOAT16 = 0, 1

# int32 read_at(void *ctx, void *buf, int64 n, int64 off): ntcb_open_reader's callback.
READ_AT = ctypes.CFUNCTYPE(ctypes.c_int32, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64, ctypes.c_int64)

_state = threading.Lock()
_lib = None  # the library, loaded by this process
_loaded_pid = None  # the process that loaded _lib (or the parent that did)
_forked_from = None  # pid of the parent that had loaded it, in a forked child
_unavailable = None  # why the library cannot be loaded, once tried
_warned = False


def _after_fork_in_child() -> None:
    global _state, _lib, _forked_from
    _state = threading.Lock()  # another thread may have held it at the fork
    if _lib is not None:
        _forked_from = _loaded_pid
        _lib = None


os.register_at_fork(after_in_child=_after_fork_in_child)


def library_path() -> str:
    """Where the library is looked for: $NTCB_LIBRARY, else next to this module."""
    return os.environ.get("NTCB_LIBRARY") or os.path.join(os.path.dirname(os.path.abspath(__file__)), LIBRARY_NAME)


def cuda_library_path() -> str:
    """Where the CUDA build is looked for: $NTCB_CUDA_LIBRARY, else next to this module."""
    return os.environ.get("NTCB_CUDA_LIBRARY") or os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                                 CUDA_LIBRARY_NAME)


def _cuda_initialised() -> bool:
    """Whether torch has initialised CUDA in this process (without importing
    torch, or initialising CUDA, where it has not)."""
    torch = sys.modules.get("torch")
    try:
        return bool(torch is not None and torch.cuda.is_initialized())
    except Exception:  # noqa: BLE001 - a torch without CUDA
        return False


def choose_library() -> str:
    """The library a process loads, once: the CUDA build where it exists and
    torch has initialised CUDA here (the build exits the process when the
    CUDA driver cannot start, so it is never tried elsewhere, such as in
    DataLoader workers), else the CPU build. NTCB_CUDA=0 never loads the
    CUDA build."""
    cuda = cuda_library_path()
    if os.environ.get("NTCB_CUDA", "1") != "0" and os.path.exists(cuda) and _cuda_initialised():
        return cuda
    return library_path()


def mode() -> str:
    m = os.environ.get("NTCB_DECODER", "auto").strip().lower() or "auto"
    if m not in MODES:
        raise ValueError(f"NTCB_DECODER={m!r}: want one of {', '.join(MODES)}")
    return m


def fork_message(parent: int) -> str:
    return (f"ntcb: this process (pid {os.getpid()}) was forked from process {parent} after that process had loaded "
            "ntcb's native decoder, whose Go runtime does not survive fork(): calling it here would hang. "
            "Start the workers with forkserver or spawn instead: "
            "torch.utils.data.DataLoader(..., multiprocessing_context=\"forkserver\"), or "
            "multiprocessing.get_context(\"forkserver\"). Or read no samples in the parent before it forks "
            "(opening files and reading keys is fine: only decoding loads the native decoder). "
            "NTCB_DECODER=python decodes in pure Python instead, much slower.")


def _bind(lib) -> None:
    i32, i64, p = ctypes.c_int32, ctypes.c_int64, ctypes.c_void_p
    pi64, cp = ctypes.POINTER(ctypes.c_int64), ctypes.c_char_p
    sigs = {
        "ntcb_abi_version": (i32, []),
        "ntcb_open_path": (i32, [cp, pi64, p, i64]),
        "ntcb_open_fd": (i32, [i32, pi64, p, i64]),
        "ntcb_open_bytes": (i32, [p, i64, pi64, p, i64]),
        "ntcb_open_reader": (i32, [READ_AT, p, i64, pi64, p, i64]),
        "ntcb_close": (i32, [i64, p, i64]),
        "ntcb_shape": (i32, [i64, pi64, pi64, pi64, p, i64]),
        "ntcb_metadata": (i32, [i64, p, i64, pi64, p, i64]),
        "ntcb_key": (i32, [i64, i64, p, i64, pi64, p, i64]),
        "ntcb_lookup": (i32, [i64, cp, i64, pi64, p, i64]),
        "ntcb_read": (i32, [i64, p, i64, i32, p, i64, p, i64]),
        "ntcb_add_model": (i32, [i64, i32, p, i64, p, i64]),
    }
    if hasattr(lib, "ntcb_cuda_read"):  # the CUDA build
        sigs["ntcb_cuda_read"] = (i32, [i64, i32, p, i64, i32, ctypes.c_uint64, i64, p, i64])
    for name, (res, args) in sigs.items():
        f = getattr(lib, name)
        f.restype, f.argtypes = res, args


def load(required: bool = False):
    """The library, loaded in this process on first use; None where it is
    not available (absent, or built for another ABI), after a one-time
    warning unless NTCB_DECODER=python. Raises ForkError in a process forked
    from one that had loaded it, and NativeUnavailable when required."""
    global _lib, _loaded_pid, _unavailable, _warned
    if _forked_from is not None:
        raise ForkError(fork_message(_forked_from))
    lib = _lib
    if lib is not None:
        return lib
    with _state:
        if _lib is not None:
            return _lib
        if _unavailable is None:
            path = choose_library()
            if not os.path.exists(path):
                _unavailable = f"{path} does not exist (build it with scripts/build-python.sh, or pip install ./python)"
            else:
                try:
                    lib = ctypes.CDLL(path)  # CDLL, not PyDLL: calls release the GIL
                    _bind(lib)
                    v = lib.ntcb_abi_version()
                    if v != ABI_VERSION:
                        _unavailable = f"{path} has ABI version {v}, this package wants {ABI_VERSION}: rebuild it"
                except (OSError, AttributeError) as e:
                    _unavailable = f"{path}: {e}"
            if _unavailable is None:
                _lib, _loaded_pid = lib, os.getpid()
                return lib
        if required:
            raise NativeUnavailable(f"ntcb: the native decoder is required and cannot be loaded: {_unavailable}")
        if not _warned and mode() == "auto":
            _warned = True
            warnings.warn(
                f"ntcb: the native decoder cannot be loaded ({_unavailable}); decoding in pure Python, "
                "about 100x slower for files of the learned codec ntc and several times slower for the others. "
                "Set NTCB_DECODER=python to silence this.", RuntimeWarning, stacklevel=4)
        return None


def loaded() -> bool:
    """Whether this process has loaded the native decoder."""
    return _lib is not None


def has_cuda() -> bool:
    """Whether the library loaded in this process is the CUDA build."""
    return _lib is not None and hasattr(_lib, "ntcb_cuda_read")


def resolve(decoder: str | None) -> str:
    """The decoder a reader uses: decoder ("auto", "native", "python") or,
    when None, NTCB_DECODER; "native" only when the library loads."""
    m = decoder if decoder is not None else mode()
    if m not in MODES:
        raise ValueError(f"decoder {m!r}: want one of {', '.join(MODES)}")
    if m == "python":
        return "python"
    return "native" if load(required=(m == "native")) is not None else "python"


_ERRBUF = 4096


def _raise(code: int, msg: str, path: str | None):
    if code in _NTCB_ERRORS:
        raise _NTCB_ERRORS[code](msg, path)
    where = f"{path}: {msg}" if path else msg
    if code == _E_NOFILE:
        raise FileNotFoundError(errno.ENOENT, msg, path)
    if code == _E_PERMISSION:
        raise PermissionError(errno.EACCES, msg, path)
    if code == _E_IO:
        raise OSError(errno.EIO, msg, path)
    if code == _E_ARGUMENT:
        raise ValueError(where)
    raise RuntimeError(f"ntcb native decoder: {where} (code {code})")


class Handle:
    """One open file in the native library. Calls may come from any thread."""

    def __init__(self, lib, *, path: str | None = None, fd: int | None = None, data: bytes | None = None,
                 source=None, name: str | None = None):
        """Opens path, the file descriptor fd, data (bytes, read in place),
        or source: any object with size and read_at(n, off) -> bytes (a
        remote file), which the library calls back, from any thread, to read."""
        self._lib = lib
        self._pid = os.getpid()
        self.name = name if name is not None else path
        self._data = data  # the library reads it in place: keep it alive
        self._read_errors: dict[int, BaseException] = {}  # per thread: what a source's read raised
        h = ctypes.c_int64(0)
        err = ctypes.create_string_buffer(_ERRBUF)
        if source is not None:
            self._read_at = READ_AT(self._reader(source))  # kept alive as long as the handle
            code = lib.ntcb_open_reader(self._read_at, None, source.size, ctypes.byref(h), err, _ERRBUF)
        elif data is not None:
            code = lib.ntcb_open_bytes(ctypes.cast(ctypes.c_char_p(data), ctypes.c_void_p), len(data),
                                       ctypes.byref(h), err, _ERRBUF)
        elif fd is not None:
            code = lib.ntcb_open_fd(fd, ctypes.byref(h), err, _ERRBUF)
        else:
            code = lib.ntcb_open_path(os.fsencode(path), ctypes.byref(h), err, _ERRBUF)
        if code:
            self._fail(code, err)
        self.h = h.value

    def _reader(self, source):
        def read_at(ctx, buf, n, off):
            try:
                b = source.read_at(n, off)
                if len(b) != n:
                    raise _errors.TruncatedError(f"read {len(b)} of {n} bytes at offset {off}")
                ctypes.memmove(buf, b, n)
                return 0
            except BaseException as e:  # noqa: BLE001 - raised again by the call that made the read
                self._read_errors[threading.get_ident()] = e
                return 1

        return read_at

    def _fail(self, code: int, err) -> None:
        e = self._read_errors.pop(threading.get_ident(), None)
        if e is not None:  # the source's own error (a remote failure, a short file)
            raise e
        _raise(code, err.value.decode("utf-8", "replace"), self.name)

    def _call(self, fn, *args):
        if self.h is None:
            raise ValueError(f"{self.name}: the native handle is closed")
        err = ctypes.create_string_buffer(_ERRBUF)
        code = fn(self.h, *args, err, _ERRBUF)
        if code:
            self._fail(code, err)

    def shape(self) -> tuple[int, int, int]:
        n, t, d = ctypes.c_int64(), ctypes.c_int64(), ctypes.c_int64()
        self._call(self._lib.ntcb_shape, ctypes.byref(n), ctypes.byref(t), ctypes.byref(d))
        return n.value, t.value, d.value

    def _bytes(self, fn, *args) -> bytes:
        n = ctypes.c_int64()
        buf = ctypes.create_string_buffer(256)
        self._call(fn, *args, buf, len(buf), ctypes.byref(n))
        if n.value > len(buf):
            buf = ctypes.create_string_buffer(n.value)
            self._call(fn, *args, buf, len(buf), ctypes.byref(n))
        return buf.raw[: n.value]

    def metadata(self) -> bytes:
        """The metadata block as stored (JSON)."""
        return self._bytes(self._lib.ntcb_metadata)

    def key(self, i: int) -> str:
        return self._bytes(self._lib.ntcb_key, i).decode("utf-8", "surrogateescape")

    def lookup(self, key: str) -> int:
        k = key.encode("utf-8", "surrogateescape")
        out = ctypes.c_int64()
        self._call(self._lib.ntcb_lookup, k, len(k), ctypes.byref(out))
        return out.value

    def add_model(self, codec: int, blob: bytes) -> None:
        """Gives the library the blob of a model the file holds by reference
        (copied; used only where its SHA-256 is the one the file records)."""
        blob = bytes(blob)
        self._call(self._lib.ntcb_add_model, codec, ctypes.cast(ctypes.c_char_p(blob), ctypes.c_void_p), len(blob))

    def read(self, indices, out: np.ndarray) -> np.ndarray:
        """Decodes the samples indices into out, a C-contiguous float32 or
        float16 array [len(indices), tokens, dim]; the GIL is released."""
        idx = np.ascontiguousarray(indices, dtype=np.int64)
        if out.dtype == np.float32:
            dt = FLOAT32
        elif out.dtype == np.float16:
            dt = FLOAT16
        else:
            raise TypeError(f"native output must be float32 or float16, not {out.dtype}")
        if not out.flags.c_contiguous or not out.flags.writeable:
            raise ValueError("native output must be a writeable C-contiguous array")
        self._call(self._lib.ntcb_read, idx.ctypes.data, len(idx), dt, out.ctypes.data, out.nbytes)
        return out

    def cuda_read(self, indices, device_index: int, out) -> None:
        """Decodes the samples indices on GPU device_index into out, a
        contiguous float16 or float32 torch tensor [n, tokens, dim] on that
        device (the CUDA build only). Returns when out is complete."""
        import torch

        idx = np.ascontiguousarray(indices, dtype=np.int64)
        if out.dtype == torch.float32:
            dt = FLOAT32
        elif out.dtype == torch.float16:
            dt = FLOAT16
        else:
            raise TypeError(f"native output must be float32 or float16, not {out.dtype}")
        if not out.is_contiguous() or out.device.type != "cuda":
            raise ValueError("native output must be a contiguous CUDA tensor")
        self._call(self._lib.ntcb_cuda_read, device_index, idx.ctypes.data, len(idx), dt, out.data_ptr(),
                   out.numel() * out.element_size())

    def close(self) -> None:
        h, self.h = self.h, None
        if h is not None and self._pid == os.getpid() and _lib is self._lib:
            err = ctypes.create_string_buffer(_ERRBUF)
            self._lib.ntcb_close(h, err, _ERRBUF)

    def __del__(self):
        try:
            self.close()
        except Exception:  # noqa: BLE001 - interpreter shutdown
            pass
