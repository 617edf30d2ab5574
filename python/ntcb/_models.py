"""Models held by reference: a .ntcb file (container version 2) may record
its codec model by SHA-256 instead of storing it, so that many files share
one model file (.ntcm). This module finds such a model, as pkg/ntcb's Models
does: in the model files the caller names, then next to the file (the model
file its metadata names, the models of a dataset index in the same
directory, and for a local file every .ntcm there), and checks the blob's
SHA-256 before anything decodes with it.
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
import threading

from . import _remote
from .container import MAX_MODEL_SIZE, Container
from .errors import CorruptError, NotFound, NtcbError

MAX_MODEL_SCAN = 64


class ModelNotFound(NtcbError):
    """A file holds its model by reference and no model with its hash was
    found where the reader looked."""


def _short(sha: bytes) -> str:
    return sha[:6].hex() + "…"


def _model_blob(c: Container, cid: int, where: str) -> bytes | None:
    """The model blob of codec cid in an opened .ntcm container."""
    try:
        meta = json.loads(bytes(c.metadata).decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as e:
        raise CorruptError(f"metadata: {e}", where) from None
    if not isinstance(meta, dict) or meta.get("format") != "ntcm":
        raise CorruptError("not a model file (.ntcm)", where)
    return c.read_model(cid)


def _open_container(loc: str) -> Container:
    if _remote.is_url(loc):
        return Container(_src=_remote.open_source(loc))
    return Container(loc)


def read_model_blob(loc: str, cid: int) -> bytes | None:
    """The blob of codec cid's model in the .ntcm file at loc (path or URL)."""
    c = _open_container(loc)
    try:
        return _model_blob(c, cid, loc)
    finally:
        c.close()


class Models:
    """Where to find models held by reference, shared by readers (a
    dataset's shards share one), and the blobs found, by hash."""

    def __init__(self, files=()):
        self._files = [os.fspath(f) if not isinstance(f, str) else f for f in files]
        self._blobs: dict[bytes, tuple[bytes, str]] = {}
        self._seen: list[str] = []
        self._lock = threading.Lock()

    def add_file(self, loc) -> None:
        with self._lock:
            self._files.append(os.fspath(loc) if not isinstance(loc, str) else loc)

    def files(self) -> list[str]:
        return list(self._files)

    def _add(self, blob: bytes, where: str) -> None:
        sha = hashlib.sha256(blob).digest()
        self._blobs.setdefault(sha, (blob, where))
        self._seen.append(f"{where} (model {_short(sha)})")

    def find(self, cid: int, sha: bytes, length: int, hint: str, locators=()) -> tuple[bytes, str]:
        """The blob of the model with the hash (checked) and where it was."""
        with self._lock:
            while sha not in self._blobs and self._files:
                loc = self._files.pop(0)
                blob = read_model_blob(loc, cid)
                if blob is not None:
                    self._add(bytes(blob), loc)
            looked: list[str] = []
            for locate in locators:
                if sha in self._blobs:
                    break
                blob, where = locate(cid, sha, hint)
                if blob is None:
                    if where:
                        looked.append(where)
                    continue
                blob = bytes(blob)
                if hashlib.sha256(blob).digest() != sha:
                    looked.append(f"{where} (another model)")
                    continue
                self._add(blob, where)
            if sha not in self._blobs:
                where = self._seen + looked
                msg = "looked in " + ", ".join(where) if where else "no model file given"
                raise ModelNotFound(
                    f"the file holds its model by reference, sha256 {sha.hex()} ({length} bytes); {msg}. Keep the model "
                    "file (.ntcm) next to the file or in its dataset, or name it: ntcb.open(..., model=PATH)"
                )
            blob, where = self._blobs[sha]
        if len(blob) != length:
            raise CorruptError(f"{where} holds model {_short(sha)} of {len(blob)} bytes; the file records {length}")
        return blob, where


def dir_locator(directory: str):
    """Looks next to a local file: the file its metadata names, then every
    .ntcm in the directory (at most 64, sorted), skipping those whose index
    records another hash."""

    def locate(cid: int, sha: bytes, hint: str):
        names = []
        if hint and os.path.basename(hint) == hint:
            names.append(hint)
        for p in sorted(glob.glob(os.path.join(glob.escape(directory), "*.ntcm"))):
            if os.path.basename(p) != hint:
                names.append(os.path.basename(p))
        notes = []
        for name in names[:MAX_MODEL_SCAN]:
            path = os.path.join(directory, name)
            if not os.path.exists(path):
                continue
            try:
                c = Container(path)
            except NtcbError as e:
                notes.append(f"{path} (unreadable: {e.detail})")
                continue
            try:
                m = next((m for m in c.models if m.codec == cid and not m.external), None)
                if m is None:
                    notes.append(f"{path} (no model for this codec)")
                    continue
                if m.sha256 and m.sha256 != sha:
                    notes.append(f"{path} (model {_short(m.sha256)})")
                    continue
                blob = _model_blob(c, cid, path)
                got = hashlib.sha256(bytes(blob)).digest()
                if got == sha:
                    return bytes(blob), path
                notes.append(f"{path} (model {_short(got)})")
            except NtcbError as e:
                notes.append(f"{path} (unreadable: {e.detail})")
            finally:
                c.close()
        if not notes:
            return None, f"{directory} (no .ntcm files)"
        if len(notes) > 4:
            notes = notes[:4] + [f"{len(notes) - 4} more .ntcm files in {directory}"]
        return None, ", ".join(notes)

    return locate


def hint_locator(base: str):
    """Looks for the model file the referring file's metadata names, under
    the directory URL (or path) base."""

    def locate(cid: int, sha: bytes, hint: str):
        from .dataset import check_name

        if not hint:
            return None, ""
        try:
            check_name(hint)
        except NtcbError:
            return None, ""
        loc = _remote.join(base, hint)
        try:
            data = _remote.read_file(loc, MAX_MODEL_SIZE + (1 << 20))
        except NotFound:
            return None, f"{loc} (not found)"
        c = Container.from_bytes(data)
        return _model_blob(c, cid, loc), loc

    return locate


def index_locator(base: str):
    """Looks among the models of a dataset whose index.json is in the
    directory base (a path or URL), if there is one."""

    def locate(cid: int, sha: bytes, hint: str):
        from . import dataset

        try:
            idx = dataset.read_index(_remote.join(base, dataset.INDEX_NAME))
        except NotFound:
            return None, ""
        for m in idx["models"]:
            if m["model_sha256"] == sha.hex():
                loc = _remote.join(base, m["file"])
                return read_model_blob(loc, cid), loc
        return None, f"the models of {_remote.join(base, dataset.INDEX_NAME)}"

    return locate


def file_locators(loc: str | None) -> list:
    """Where a file at loc looks for its model by reference, beside itself."""
    if loc is None:
        return []
    if _remote.is_url(loc):
        base = loc.rsplit("/", 1)[0]
        return [hint_locator(base), index_locator(base)]
    d = os.path.dirname(os.path.abspath(loc))
    return [index_locator(d), dir_locator(d)]
