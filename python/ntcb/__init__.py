"""Read .ntcb files (compressed ViT token dumps written by ntc) from Python.

Samples are decoded by the Go decoder built as a C library (libntcb.so,
scripts/build-python.sh or pip install ./python), loaded at the first
decode in a process; without it, by the pure-Python reference decoder
(numpy; fp16 chunks also need zstandard), after a one-time warning. ::

    import ntcb
    r = ntcb.open("train.ntcb")
    len(r)                 # samples
    r[0]                   # float32 [tokens, dim]
    r.keys()[:3]           # sample keys, in storage order
    r.get("shards/000#7")  # by key
    r.read([0, 5, 9])      # float32 [3, tokens, dim]
    r.meta                 # metadata: codec, layout, shape, user pairs
    ds = ntcb.open("data/")  # a dataset of shards (also its index.json, an http(s) or fsspec URL)

Every checksum is verified before data is decoded, and damaged or hostile
files raise ntcb.NtcbError subclasses that name the file.
See docs/usage.md for a torch Dataset and a training loop.
"""

from .codecs import Layout, names as codec_names
from .container import MAGIC
from .errors import (
    BadMagic,
    ChecksumError,
    CorruptError,
    ExternalModel,
    NotFound,
    NtcbError,
    TooLargeError,
    TruncatedError,
    UnknownCodecError,
    UnsupportedVersion,
)
from ._models import ModelNotFound
from ._remote import RemoteError
from .dataset import Dataset, MismatchError
from ._native import ForkError, NativeUnavailable
from .reader import Reader, open

__version__ = "0.1.0"

__all__ = [
    "open",
    "Reader",
    "Dataset",
    "Layout",
    "codec_names",
    "MAGIC",
    "NtcbError",
    "BadMagic",
    "UnsupportedVersion",
    "ChecksumError",
    "CorruptError",
    "TooLargeError",
    "TruncatedError",
    "UnknownCodecError",
    "ExternalModel",
    "NotFound",
    "ModelNotFound",
    "MismatchError",
    "RemoteError",
    "ForkError",
    "NativeUnavailable",
]
