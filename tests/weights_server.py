"""A local HTTP server in the publishers' URL layouts, for weight fetching tests (no internet in tests).

    with PublisherServer() as server:
        server.put("/models/squeezenet1_1-1a2b3c4d.pth", data)                # download.pytorch.org's layout
        server.put_hub("timm/regnetx_002.pycls_in1k", "model.safetensors", data)  # the hub's /<repo>/resolve/<rev>/<file>
        server.misbehave("/models/x.pth", cut_after=1000)                      # the first GET ends after 1000 bytes
        server.url + "/models/..."

Files are served with Content-Length and answer Range requests (206); hub paths answer HEAD with the
headers huggingface_hub reads (X-Repo-Commit, ETag = the sha256 of an LFS file, Content-Length), and a
missing hub file with the hub's 404 (X-Error-Code: EntryNotFound). Behaviours per path: cut the first
GET's body after N bytes (cut_after), wait before answering (delay_s), redirect (redirect_to), or an
ETag that is not the file's (etag). Every request is recorded (method, path, Range header).
"""

from __future__ import annotations

import hashlib
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

COMMIT = "0123456789abcdef0123456789abcdef01234567"


@dataclass
class Behaviour:
    cut_after: int = 0  # the first GET sends this many bytes of the body, then closes the connection
    delay_s: float = 0.0  # seconds before any answer
    redirect_to: str = ""  # answer 302 to this path
    etag: str = ""  # hub: the ETag sent instead of the file's sha256
    cuts_left: int = 1


class PublisherServer:
    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.hub_paths: set[str] = set()
        self.behaviours: dict[str, Behaviour] = {}
        self.requests: list[tuple[str, str, str]] = []
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:  # quiet
                pass

            def do_HEAD(self) -> None:
                server._answer(self, head=True)

            def do_GET(self) -> None:
                server._answer(self, head=False)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, name="publisher-server", daemon=True)

    def __enter__(self) -> PublisherServer:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    # -- content

    def put(self, path: str, data: bytes) -> str:
        self.files[path] = data
        return self.url + path

    def put_hub(self, repo: str, filename: str, data: bytes, revision: str = "main") -> str:
        path = f"/{repo}/resolve/{revision}/{filename}"
        self.hub_paths.add(path)
        return self.put(path, data)

    def misbehave(self, path: str, **behaviour) -> None:
        self.behaviours[path] = Behaviour(**behaviour)

    def ranges(self, path: str) -> list[str]:
        """The Range headers of the GETs of a path ("" for none)."""
        return [r for m, p, r in self.requests if m == "GET" and p == path]

    # -- serving

    def _answer(self, h: BaseHTTPRequestHandler, head: bool) -> None:
        path = h.path.split("?", 1)[0]
        rng = h.headers.get("Range", "")
        with self._lock:
            self.requests.append(("HEAD" if head else "GET", path, rng))
        b = self.behaviours.get(path, Behaviour())
        if b.delay_s:
            time.sleep(b.delay_s)
        if b.redirect_to:
            h.send_response(302)
            h.send_header("Location", self.url + b.redirect_to)
            h.send_header("Content-Length", "0")
            h.end_headers()
            return
        data = self.files.get(path)
        hub = path in self.hub_paths or "/resolve/" in path
        if data is None:
            h.send_response(404)
            if hub:
                h.send_header("X-Error-Code", "EntryNotFound")
                h.send_header("X-Repo-Commit", COMMIT)
            h.send_header("Content-Length", "0")
            h.end_headers()
            return
        start = 0
        if rng.startswith("bytes=") and not head:
            start = int(rng[len("bytes=") :].split("-")[0])
        body = data[start:]
        h.send_response(206 if start else 200)
        if start:
            h.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        h.send_header("Content-Length", str(len(body)))
        h.send_header("Accept-Ranges", "bytes")
        h.send_header("Content-Type", "application/octet-stream")
        if hub:
            h.send_header("X-Repo-Commit", COMMIT)
            h.send_header("ETag", f'"{b.etag or hashlib.sha256(data).hexdigest()}"')
        h.end_headers()
        if head:
            return
        if b.cut_after and b.cuts_left > 0 and not start:
            b.cuts_left -= 1
            h.wfile.write(body[: b.cut_after])
            h.wfile.flush()
            h.close_connection = True
            h.connection.shutdown(2)  # the peer sees the body end early
            return
        h.wfile.write(body)
