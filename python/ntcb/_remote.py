"""Reading files where they are kept: local paths, http(s) URLs read with
Range requests, and any fsspec URL (s3://, gs://, ...) when fsspec and its
backend are installed.

A source has ``path`` (for messages), ``size``, ``read_at(n, off)`` and
``close()``, as container.Container expects. The HTTP source mirrors Go's
pkg/remote: aligned blocks (64 KiB) in a bounded LRU cache (32 MiB), one
suffix request on open that gives the size and the file's last block (for a
.ntcb file its footer, index and metadata), retries with exponential
backoff and full jitter on transient failures (connection errors, 408, 425,
429, 5xx, a body cut short; Retry-After honoured), and every response
checked against its request: status 206, the exact Content-Range, the size
and ETag unchanged since opening, a body of exactly the length asked for.
Buffers are sized from the request, never from what a server declares. The
bytes themselves are checked by their reader (CRCs, SHA-256).
"""

from __future__ import annotations

import os
import random
import re
import threading
import time
import urllib.error
import urllib.request
from collections import OrderedDict

from .errors import NtcbError, NotFound, TooLargeError, TruncatedError

BLOCK_SIZE = 64 << 10
CACHE_BYTES = 32 << 20
RETRIES = 5
MIN_BACKOFF = 0.1
MAX_BACKOFF = 5.0
MAX_REQUEST = 16 << 20
TIMEOUT = 30.0

_TRANSIENT = {408, 425, 429, 500, 502, 503, 504}
_CONTENT_RANGE = re.compile(r"bytes (\d{1,18})-(\d{1,18})/(\d{1,18}|\*)\Z")
_UNSATISFIED = re.compile(r"bytes \*/(\d{1,18})\Z")


class RemoteError(NtcbError):
    """A remote file cannot be read: a bad answer, no Range support, or the
    file changed while it was read."""


class _Transient(Exception):
    """A failure worth another try, with the server's Retry-After if any."""

    def __init__(self, msg: str, retry_after: float | None = None):
        super().__init__(msg)
        self.retry_after = retry_after


def is_url(s) -> bool:
    return isinstance(s, str) and "://" in s


def is_http(s) -> bool:
    return isinstance(s, str) and s.lower().startswith(("http://", "https://"))


def join(base: str, name: str) -> str:
    """The URL or path of name (a '/'-separated relative path) under base."""
    if is_url(base):
        return base.rstrip("/") + "/" + name
    return os.path.join(base, *name.split("/"))


def parse_content_range(s: str | None) -> tuple[int, int, int]:
    """(start, end inclusive, size; -1 if '*') of a Content-Range header."""
    m = _CONTENT_RANGE.match(s or "")
    if not m:
        raise RemoteError(f"bad Content-Range {s!r}")
    a, b = int(m.group(1)), int(m.group(2))
    size = -1 if m.group(3) == "*" else int(m.group(3))
    if b < a or (size >= 0 and b >= size):
        raise RemoteError(f"bad Content-Range {s!r}")
    return a, b, size


def _retry(url: str, attempt, retries: int = RETRIES, min_backoff: float = MIN_BACKOFF, max_backoff: float = MAX_BACKOFF,
           on_retry=None):
    wait = min_backoff
    for tries in range(retries + 1):
        try:
            return attempt()
        except _Transient as e:
            if tries == retries:
                raise RemoteError(f"after {tries + 1} tries: {e}", url) from None
            if on_retry is not None:
                on_retry()
            d = random.uniform(0, wait)
            if e.retry_after is not None:
                d = max(d, min(e.retry_after, max_backoff))
            time.sleep(d)
            wait = min(2 * wait, max_backoff)


def _status_error(url: str, code: int, headers) -> Exception:
    if code in (404, 410):
        return NotFound(f"HTTP {code}: no such file", url)
    if code in _TRANSIENT:
        ra = headers.get("Retry-After") if headers is not None else None
        try:
            after = min(float(int(ra)), 3600.0) if ra is not None else None
        except ValueError:
            after = None
        return _Transient(f"HTTP {code}", after)
    return RemoteError(f"HTTP {code}", url)


def _request(url: str, headers: dict, timeout: float):
    """Sends one GET; returns (status, headers, response) or raises _Transient
    for a connection failure."""
    req = urllib.request.Request(url, headers=headers)
    try:
        resp = urllib.request.urlopen(req, timeout=timeout)
        return resp.status, resp.headers, resp
    except urllib.error.HTTPError as e:
        try:
            e.read(4096)
        finally:
            e.close()
        return e.code, e.headers, None
    except (urllib.error.URLError, ConnectionError, TimeoutError, OSError) as e:
        raise _Transient(f"connection: {e}") from None


def _read_exact(resp, n: int, url: str) -> bytes:
    """Reads a body that must be exactly n bytes."""
    cl = resp.headers.get("Content-Length")
    if cl is not None and cl.strip().isdigit() and int(cl) != n:
        raise RemoteError(f"Content-Length {cl}, want {n}", url)
    buf = bytearray()
    try:
        while len(buf) < n:
            part = resp.read(n - len(buf))
            if not part:
                break
            buf += part
        extra = resp.read(1)
    except (ConnectionError, TimeoutError, OSError, ValueError) as e:
        raise _Transient(f"body: {len(buf)} of {n} bytes: {e}") from None
    if len(buf) < n:
        raise _Transient(f"body: {len(buf)} of {n} bytes")
    if extra:
        raise RemoteError(f"body longer than {n} bytes", url)
    return bytes(buf)


class HTTPFile:
    """A remote file read with HTTP Range requests, for container.Container.

    Thread-safe; concurrent reads of one block share one request. ``stats``
    counts requests, retries, body bytes and cache hits."""

    def __init__(self, url: str, *, block_size: int = BLOCK_SIZE, cache_bytes: int = CACHE_BYTES, retries: int = RETRIES,
                 min_backoff: float = MIN_BACKOFF, max_backoff: float = MAX_BACKOFF, headers: dict | None = None,
                 timeout: float = TIMEOUT):
        self.path = url
        self.block = max(512, int(block_size))
        self.max_blocks = max(2, int(cache_bytes) // self.block)
        self.retries, self.min_backoff, self.max_backoff = retries, min_backoff, max_backoff
        self.headers = dict(headers or {})
        self.timeout = timeout
        self.stats = {"requests": 0, "retries": 0, "bytes": 0, "hits": 0}
        self._lock = threading.Lock()
        self._blocks: OrderedDict[int, bytes] = OrderedDict()
        self._inflight: dict[int, threading.Event] = {}
        self.etag = None
        self.size = -1
        self._open_tail()

    # -- requests ------------------------------------------------------------

    def _get(self, rng: str | None, handle):
        def attempt():
            h = dict(self.headers)
            if rng:
                h["Range"] = rng
            with self._lock:
                self.stats["requests"] += 1
            status, headers, resp = _request(self.path, h, self.timeout)
            try:
                return handle(status, headers, resp)
            finally:
                if resp is not None:
                    resp.close()

        def count():
            with self._lock:
                self.stats["retries"] += 1

        return _retry(self.path, attempt, self.retries, self.min_backoff, self.max_backoff, count)

    def _count(self, b: bytes) -> bytes:
        with self._lock:
            self.stats["bytes"] += len(b)
        return b

    def _open_tail(self) -> None:
        B = self.block

        def handle(status, headers, resp):
            cr = headers.get("Content-Range") if headers is not None else None
            if status == 206:
                if cr and cr.endswith("/0"):
                    return 0, headers.get("ETag"), 0, b""
                a, b, size = parse_content_range(cr)
                if size < 0 or b - a + 1 > B or b != size - 1:
                    raise RemoteError(f"suffix range answered with Content-Range {cr!r}", self.path)
                return size, headers.get("ETag"), a, self._count(_read_exact(resp, b - a + 1, self.path))
            if status == 416:
                m = _UNSATISFIED.match(cr or "")
                if m and int(m.group(1)) == 0:
                    return 0, headers.get("ETag"), 0, b""
                raise RemoteError("HTTP 416", self.path)
            if status == 200:
                # The server ignores Range: fine for a file within one block.
                cl = headers.get("Content-Length")
                if cl is not None and cl.strip().isdigit() and int(cl) > B:
                    raise RemoteError("the server does not support HTTP Range requests", self.path)
                body = self._count(resp.read(B + 1))
                if len(body) > B:
                    raise RemoteError("the server does not support HTTP Range requests", self.path)
                return len(body), headers.get("ETag"), 0, body
            raise _status_error(self.path, status, headers)

        self.size, self.etag, start, data = self._get(f"bytes=-{B}", handle)
        i = (start + B - 1) // B
        while i * B < self.size:
            self._insert(i, data[i * B - start : min((i + 1) * B, self.size) - start])
            i += 1

    def _fetch(self, start: int, end: int) -> bytes:
        """Bytes [start, end) with one Range request (and retries)."""

        def handle(status, headers, resp):
            if status == 200:
                raise RemoteError("the server does not support HTTP Range requests", self.path)
            if status in (412, 416):
                raise RemoteError(f"HTTP {status}: the file changed while being read", self.path)
            if status != 206:
                raise _status_error(self.path, status, headers)
            et = headers.get("ETag")
            if et and self.etag and et != self.etag:
                raise RemoteError(f"the file changed while being read (ETag {et}, was {self.etag})", self.path)
            a, b, size = parse_content_range(headers.get("Content-Range"))
            if a != start or b != end - 1:
                raise RemoteError(f"asked for bytes {start}-{end - 1}, got Content-Range {headers.get('Content-Range')!r}", self.path)
            if size != self.size:
                raise RemoteError(f"the file changed while being read (size {size}, was {self.size})", self.path)
            return self._count(_read_exact(resp, end - start, self.path))

        return self._get(f"bytes={start}-{end - 1}", handle)

    # -- cache ---------------------------------------------------------------

    def _insert(self, i: int, data: bytes) -> None:
        self._blocks[i] = data
        self._blocks.move_to_end(i)
        while len(self._blocks) > self.max_blocks:
            self._blocks.popitem(last=False)

    def read_at(self, n: int, off: int) -> bytes:
        if off < 0 or n < 0:
            raise ValueError(f"read of {n} bytes at {off}")
        end = min(off + n, self.size)
        if end - off < n:
            raise TruncatedError(f"read {max(0, end - off)} of {n} bytes at offset {off}", self.path)
        if n == 0:
            return b""
        B = self.block
        first, last = off // B, (end - 1) // B
        got: dict[int, bytes] = {}
        waits: list[tuple[int, threading.Event]] = []
        mine: list[int] = []
        with self._lock:
            for i in range(first, last + 1):
                if i in self._blocks:
                    self._blocks.move_to_end(i)
                    got[i] = self._blocks[i]
                    self.stats["hits"] += 1
                elif i in self._inflight:
                    waits.append((i, self._inflight[i]))
                else:
                    self._inflight[i] = threading.Event()
                    mine.append(i)
        try:
            per = max(1, MAX_REQUEST // B)
            s = 0
            while s < len(mine):
                e = s + 1
                while e < len(mine) and mine[e] == mine[e - 1] + 1 and e - s < per:
                    e += 1
                run = mine[s:e]
                start, stop = run[0] * B, min((run[-1] + 1) * B, self.size)
                data = self._fetch(start, stop)
                with self._lock:
                    for i in run:
                        blk = data[i * B - start : min((i + 1) * B, self.size) - start]
                        got[i] = blk
                        self._insert(i, blk)
                        self._inflight.pop(i).set()
                s = e
        finally:
            with self._lock:
                for i in mine:
                    ev = self._inflight.pop(i, None)
                    if ev is not None:
                        ev.set()
        for i, ev in waits:
            ev.wait()
            with self._lock:
                blk = self._blocks.get(i)
            if blk is None:  # the other reader failed, or it was evicted already
                blk = self._fetch(i * B, min((i + 1) * B, self.size))
            got[i] = blk
        out = b"".join(got[i] for i in range(first, last + 1))
        lo = off - first * B
        return out[lo : lo + n]

    def close(self) -> None:
        with self._lock:
            self._blocks.clear()

    def __getstate__(self):
        return {"url": self.path}

    def __setstate__(self, state):
        self.__init__(state["url"])


class FsspecFile:
    """A file at any fsspec URL (s3://, gs://, memory://, ...), read with
    positional reads under a lock."""

    def __init__(self, url: str):
        try:
            import fsspec
        except ImportError:
            raise RemoteError("reading this URL needs fsspec (and its backend for the scheme)", url) from None
        self.path = url
        try:
            fs, p = fsspec.core.url_to_fs(url)
            self._f = fs.open(p, "rb")
            self.size = int(fs.size(p))
        except FileNotFoundError:
            raise NotFound("no such file", url) from None
        except (ImportError, ValueError) as e:
            raise RemoteError(f"fsspec cannot open it: {e}", url) from None
        self._lock = threading.Lock()

    def read_at(self, n: int, off: int) -> bytes:
        with self._lock:
            self._f.seek(off)
            b = self._f.read(n)
        if len(b) != n:
            raise TruncatedError(f"read {len(b)} of {n} bytes at offset {off}", self.path)
        return b

    def close(self) -> None:
        self._f.close()


def open_source(loc: str):
    """A source for container.Container at a URL: HTTP(S), else fsspec."""
    if is_http(loc):
        return HTTPFile(loc)
    return FsspecFile(loc)


def read_file(loc: str, limit: int) -> bytes:
    """The whole file at loc (a path or URL), refusing more than limit bytes."""
    if not is_url(loc):
        try:
            with open(loc, "rb") as f:
                size = os.fstat(f.fileno()).st_size
                if size > limit:
                    raise TooLargeError(f"{size} bytes > {limit}", loc)
                return f.read()
        except FileNotFoundError:
            raise NotFound("no such file", loc) from None
    if not is_http(loc):
        src = FsspecFile(loc)
        try:
            if src.size > limit:
                raise TooLargeError(f"{src.size} bytes > {limit}", loc)
            return src.read_at(src.size, 0)
        finally:
            src.close()

    def attempt():
        status, headers, resp = _request(loc, {}, TIMEOUT)
        try:
            if status != 200:
                raise _status_error(loc, status, headers)
            cl = headers.get("Content-Length")
            if cl is not None and cl.strip().isdigit() and int(cl) > limit:
                raise TooLargeError(f"{cl} bytes > {limit}", loc)
            try:
                b = resp.read(limit + 1)
            except (ConnectionError, TimeoutError, OSError) as e:
                raise _Transient(f"body: {e}") from None
            if len(b) > limit:
                raise TooLargeError(f"more than {limit} bytes", loc)
            if cl is not None and cl.strip().isdigit() and len(b) != int(cl):
                raise _Transient(f"body: {len(b)} of {cl} bytes")
            return b
        finally:
            if resp is not None:
                resp.close()

    return _retry(loc, attempt)
