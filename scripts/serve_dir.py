#!/usr/bin/env python3
"""Serve a directory over HTTP with Range requests, for trying remote reads.

    python3 scripts/serve_dir.py out/usage --port 8000
    python3 -c 'import ntcb; print(ntcb.open("http://127.0.0.1:8000/data"))'

Python's own http.server answers every request with the whole file (no
Range support), which a remote reader refuses for anything larger than one
block; this one answers single byte ranges (206, suffix ranges, 416), sends
an ETag, and counts requests and bytes served. It is for local trials and
the tests (which also tell it to fail requests): put real datasets behind a
web server or an object store.
"""

from __future__ import annotations

import os
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

_RANGE = re.compile(r"bytes=(\d*)-(\d*)\Z")


class Server:
    def __init__(self, root: str, host: str = "127.0.0.1", port: int = 0):
        self.root = root
        self.requests = 0
        self.served = 0
        self.fail = None  # fail(handler, n) -> bool: answered it
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_GET(self):
                with server._lock:
                    server.requests += 1
                    n = server.requests
                if server.fail is not None and server.fail(self, n):
                    return
                path = os.path.join(server.root, *[p for p in self.path.split("?")[0].split("/") if p])
                if ".." in self.path or not os.path.isfile(path):
                    self.send_error(404)
                    return
                with open(path, "rb") as f:
                    data = f.read()
                size = len(data)
                rng = self.headers.get("Range")
                if rng is None:
                    self.send_response(200)
                    self.send_header("Content-Length", str(size))
                    self.send_header("ETag", '"v1"')
                    self.end_headers()
                    self._write(data)
                    return
                m = _RANGE.match(rng)
                if not m or (m.group(1) == "" and m.group(2) == ""):
                    self.send_error(400)
                    return
                if m.group(1) == "":
                    a, b = max(0, size - int(m.group(2))), size - 1
                else:
                    a = int(m.group(1))
                    b = min(int(m.group(2)), size - 1) if m.group(2) else size - 1
                if size == 0 or a > b or a >= size:
                    self.send_response(416)
                    self.send_header("Content-Range", f"bytes */{size}")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(206)
                self.send_header("Content-Range", f"bytes {a}-{b}/{size}")
                self.send_header("Content-Length", str(b - a + 1))
                self.send_header("ETag", '"v1"')
                self.end_headers()
                self._write(data[a : b + 1])

            def _write(self, b: bytes):
                self.wfile.write(b)
                with server._lock:
                    server.served += len(b)

        self.httpd = ThreadingHTTPServer((host, port), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://{host}:{self.httpd.server_address[1]}"
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self._thread.start()

    def reset(self):
        with self._lock:
            self.requests = self.served = 0

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def main() -> int:
    import argparse
    import time

    p = argparse.ArgumentParser(description="Serve a directory over HTTP with Range requests.")
    p.add_argument("dir", help="the directory to serve")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8000, help="port (default 8000; 0 picks one)")
    args = p.parse_args()
    s = Server(args.dir, args.host, args.port)
    print(f"serving {os.path.abspath(args.dir)} at {s.url}/ (Ctrl-C stops)", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        s.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
