"""A model hub on loopback, for the tests: just enough of the Hugging Face Hub's HTTP API for
huggingface_hub's own snapshot_download to pull through it (revision info, the file tree,
HEAD and GET of each file, ranges too). It serves folders of
files the tests build, counts the bytes it sends and can go slowly."""

from __future__ import annotations

import hashlib
import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

COMMIT = "0123456789abcdef0123456789abcdef01234567"
CHUNK = 64 * 1024


class FakeHub:
    def __init__(self, repos: dict[str, Path]):
        """`repos`: repository id ("org/name") -> a folder whose files it holds."""
        self.repos = repos
        self.bytes_sent = 0
        self.delay = 0.0                   # seconds per chunk sent
        self.requests: list[str] = []
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> FakeHub:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()

    def files(self, repo: str) -> dict[str, Path]:
        root = self.repos[repo]
        return {p.relative_to(root).as_posix(): p for p in sorted(root.rglob("*")) if p.is_file()}

    def _handler(self):
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_HEAD(self) -> None:
                self._serve(body=False)

            def do_GET(self) -> None:
                self._serve(body=True)

            def _json(self, value) -> None:
                data = json.dumps(value).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _serve(self, body: bool) -> None:
                path = self.path.split("?")[0]
                hub.requests.append(f"{self.command} {path}")
                info = re.fullmatch(r"/api/models/([^/]+/[^/]+)/revision/[^/]+", path)
                tree = re.fullmatch(r"/api/models/([^/]+/[^/]+)/tree/[^/]+", path)
                resolve = re.fullmatch(r"/([^/]+/[^/]+)/resolve/[^/]+/(.+)", path)
                repo = next((m.group(1) for m in (info, tree, resolve) if m), None)
                if repo not in hub.repos:
                    self.send_error(404, "Repository not found")
                    return
                files = hub.files(repo)
                if info:
                    self._json({"id": repo, "sha": COMMIT,
                                "siblings": [{"rfilename": f} for f in files]})
                elif tree:
                    self._json([{"type": "file", "path": f, "size": p.stat().st_size,
                                 "oid": hashlib.sha1(p.read_bytes()).hexdigest()}
                                for f, p in files.items()])
                elif resolve.group(2) in files:
                    self._file(files[resolve.group(2)], body)
                else:
                    self.send_error(404, "Entry not found")

            def _file(self, path: Path, body: bool) -> None:
                data = path.read_bytes()
                start = 0
                ranged = re.fullmatch(r"bytes=(\d+)-", self.headers.get("Range", ""))
                if ranged:
                    start = int(ranged.group(1))
                self.send_response(206 if ranged else 200)
                self.send_header("X-Repo-Commit", COMMIT)
                self.send_header("ETag", f'"{hashlib.sha1(data).hexdigest()}"')
                self.send_header("Content-Length", str(len(data) - start))
                if ranged:
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                self.end_headers()
                if not body:
                    return
                for offset in range(start, len(data), CHUNK):
                    try:
                        self.wfile.write(data[offset:offset + CHUNK])
                    except (BrokenPipeError, ConnectionResetError):
                        return
                    hub.bytes_sent += min(CHUNK, len(data) - offset)
                    time.sleep(hub.delay)

        return Handler
