"""Servers on 127.0.0.1 for the remote-root tests and the streaming benchmark: an HTTP server
that honours ``Range`` (with ETags, ``If-Match``, a simulated round trip and injected faults),
the same server standing in for the Hugging Face Hub (``resolve`` and ``revision`` endpoints,
reached through ``HF_ENDPOINT``), and moto's S3 server filled with a dataset.

Every server binds 127.0.0.1 on a free port and stops when its ``with`` block ends; faults
apply to a bounded number of requests and then stop by themselves.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

HOST = "127.0.0.1"


@dataclass
class Faults:
    """Faults the server injects into its next ``count`` file requests (HEAD and GET), then
    stops. ``kind``: ``"drop"`` (close the connection without answering), ``"500"`` or
    ``"429"`` (answer that status), ``"stall"`` (answer after ``stall_s`` seconds),
    ``"norange"`` (ignore ``Range``: 200 with the whole file)."""

    kind: str = ""
    count: int = 0
    stall_s: float = 3.0
    only_get: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)

    def take(self, method: str) -> str:
        with self.lock:
            if self.count <= 0 or not self.kind or (self.only_get and method != "GET"):
                return ""
            self.count -= 1
            return self.kind

    def set(self, kind: str, count: int, **kw: Any) -> None:
        with self.lock:
            self.kind, self.count = kind, count
            for k, v in kw.items():
                setattr(self, k, v)


@dataclass
class Counters:
    """Requests answered and body bytes sent, for the efficiency figures."""

    requests: int = 0
    gets: int = 0
    bytes: int = 0
    #: ranged GETs being answered now, and the most at once
    active: int = 0
    max_active: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def enter(self) -> None:
        with self.lock:
            self.active += 1
            self.max_active = max(self.max_active, self.active)

    def leave(self) -> None:
        with self.lock:
            self.active -= 1

    def add(self, get: bool, n: int) -> None:
        with self.lock:
            self.requests += 1
            self.gets += int(get)
            self.bytes += n

    def reset(self) -> None:
        with self.lock:
            self.requests = self.gets = self.bytes = self.max_active = 0


def etag_of(path: Path) -> str:
    """A strong ETag from the file's content (a replaced file gets a new one)."""
    h = hashlib.sha1(path.read_bytes()).hexdigest()
    return f'"{h}"'


class FileServer(ThreadingHTTPServer):
    """Serves ``folders`` (URL prefix -> folder) with Range, ETag and If-Match, and, with
    ``hub`` (repo id -> (folder, commit)), the Hub's ``resolve`` and ``revision`` endpoints."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(
        self,
        folders: dict[str, Path] | None = None,
        hub: dict[str, tuple[Path, str]] | None = None,
        delay_s: float = 0.0,
        token: str | None = None,
    ) -> None:
        super().__init__((HOST, 0), _Handler)
        self.folders = {k.strip("/"): Path(v) for k, v in (folders or {}).items()}
        self.hub = hub or {}
        self.delay_s = delay_s
        self.token = token
        self.faults = Faults()
        self.counters = Counters()
        self.paths: list[str] = []

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.server_address[1]}"

    def resolve(self, url_path: str) -> Path | None:
        """The file a request path names, or None (never outside the served folders)."""
        parts = [p for p in unquote(urlsplit(url_path).path).split("/") if p]
        if any(p in (".", "..") for p in parts):
            return None
        # the Hub: /datasets/{org}/{name}/resolve/{rev}/{path}
        if len(parts) >= 6 and parts[0] == "datasets" and parts[3] == "resolve":
            repo = f"{parts[1]}/{parts[2]}"
            if repo in self.hub:
                folder, commit = self.hub[repo]
                if parts[4] in (commit, "main", "v3.0"):
                    return folder.joinpath(*parts[5:])
            return None
        for prefix, folder in self.folders.items():
            pp = [p for p in prefix.split("/") if p]
            if parts[: len(pp)] == pp and len(parts) > len(pp):
                return folder.joinpath(*parts[len(pp) :])
        return None


class _Handler(BaseHTTPRequestHandler):
    server: FileServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass

    def _send(self, status: int, body: bytes, headers: dict[str, str], head: bool = False) -> None:
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if not head:
            self.wfile.write(body)
        self.server.counters.add(not head, 0 if head else len(body))

    def _api(self) -> bool:
        parts = [p for p in urlsplit(self.path).path.split("/") if p]
        # /api/datasets/{org}/{name}/revision/{rev}
        if len(parts) >= 6 and parts[:2] == ["api", "datasets"] and parts[4] == "revision":
            repo = f"{parts[2]}/{parts[3]}"
            rev = unquote("/".join(parts[5:]))
            if repo not in self.server.hub or rev not in (self.server.hub[repo][1], "main", "v3.0"):
                self._send(404, b'{"error": "Revision Not Found"}', {"Content-Type": "application/json"})
                return True
            folder, commit = self.server.hub[repo]
            files = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
            doc = {"id": repo, "sha": commit, "siblings": [{"rfilename": f} for f in files]}
            self._send(200, json.dumps(doc).encode(), {"Content-Type": "application/json"})
            return True
        return False

    def _authorised(self) -> bool:
        if self.server.token is None:
            return True
        return self.headers.get("Authorization") == f"Bearer {self.server.token}"

    def _serve(self, head: bool) -> None:
        srv = self.server
        srv.paths.append(self.path)
        if srv.delay_s:
            time.sleep(srv.delay_s)
        if not self._authorised():
            self._send(401, b"unauthorised", {}, head)
            return
        if self._api():
            return
        fault = srv.faults.take(self.command)
        if fault == "drop":
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return
        if fault in ("500", "429"):
            self._send(int(fault), b"injected fault", {"Retry-After": "0"}, head)
            return
        if fault == "stall":
            time.sleep(srv.faults.stall_s)
        path = srv.resolve(self.path)
        if path is None or not path.is_file():
            self._send(404, b"not found", {}, head)
            return
        data = path.read_bytes()
        etag = etag_of(path)
        headers = {
            "ETag": etag,
            "Last-Modified": formatdate(path.stat().st_mtime, usegmt=True),
            "Accept-Ranges": "bytes",
            "Content-Type": "application/octet-stream",
        }
        want = self.headers.get("If-Match")
        if want is not None and want.strip() not in (etag, "*"):
            self._send(412, b"precondition failed", {"ETag": etag}, head)
            return
        rng = self.headers.get("Range")
        if rng and fault != "norange" and rng.startswith("bytes=") and "," not in rng:
            a, _, b = rng[len("bytes=") :].partition("-")
            size = len(data)
            if a == "":
                start, end = max(0, size - int(b)), size
            else:
                start, end = int(a), (int(b) + 1 if b else size)
            end = min(end, size)
            if start >= size or start >= end:
                self._send(416, b"", {"Content-Range": f"bytes */{size}"}, head)
                return
            headers["Content-Range"] = f"bytes {start}-{end - 1}/{size}"
            self._send(206, data[start:end], headers, head)
            return
        self._send(200, data, headers, head)

    def do_GET(self) -> None:  # noqa: N802
        ranged = "Range" in self.headers
        if ranged:
            self.server.counters.enter()
        try:
            self._serve(head=False)
        finally:
            if ranged:
                self.server.counters.leave()

    def do_HEAD(self) -> None:  # noqa: N802
        self._serve(head=True)


@contextmanager
def file_server(
    folders: dict[str, Path] | None = None,
    hub: dict[str, tuple[Path, str]] | None = None,
    delay_s: float = 0.0,
    token: str | None = None,
) -> Iterator[FileServer]:
    """A running :class:`FileServer`; stopped when the block ends."""
    srv = FileServer(folders, hub, delay_s, token)
    t = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    t.start()
    try:
        yield srv
    finally:
        srv.shutdown()
        srv.server_close()
        t.join(timeout=5)


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


S3_CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing", "aws_region": "us-east-1"}


@contextmanager
def s3_server() -> Iterator[str]:
    """moto's S3 server on 127.0.0.1; yields its endpoint URL."""
    from moto.server import ThreadedMotoServer

    port = free_port()
    srv = ThreadedMotoServer(ip_address=HOST, port=port, verbose=False)
    srv.start()
    try:
        yield f"http://{HOST}:{port}"
    finally:
        srv.stop()


def upload(endpoint: str, bucket: str, prefix: str, folder: Path) -> None:
    """Copies ``folder`` into ``s3://bucket/prefix/`` on the server at ``endpoint``."""
    import boto3

    s3 = boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        region_name="us-east-1",
    )
    try:
        s3.create_bucket(Bucket=bucket)
    except s3.exceptions.BucketAlreadyOwnedByYou:
        pass
    for p in sorted(folder.rglob("*")):
        if p.is_file():
            s3.upload_file(str(p), bucket, f"{prefix}/{p.relative_to(folder).as_posix()}".lstrip("/"))


def commit_of(folder: Path) -> str:
    """A stable 40-hex commit id for a served folder."""
    return hashlib.sha1(os.fsencode(str(folder))).hexdigest()
