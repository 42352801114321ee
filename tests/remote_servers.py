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
        ``"norange"`` (ignore ``Range``: 200 with the whole file), ``"trickle"`` (send the headers,
    then one body byte every ``trickle_s`` seconds)."""

    kind: str = ""
    count: int = 0
    stall_s: float = 3.0
    trickle_s: float = 0.5
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


_ETAGS: dict[tuple[str, int, int], str] = {}


def etag_of(path: Path) -> str:
    """A strong ETag from the file's content (a replaced file gets a new one); computed once
    per (path, modification time, size)."""
    st = path.stat()
    key = (str(path), st.st_mtime_ns, st.st_size)
    if key not in _ETAGS:
        _ETAGS[key] = '"' + hashlib.sha1(path.read_bytes()).hexdigest() + '"'
    return _ETAGS[key]


def read_range(path: Path, start: int, end: int) -> bytes:
    with path.open("rb") as f:
        f.seek(start)
        return f.read(end - start)


class FileServer(ThreadingHTTPServer):
    """Serves ``folders`` (URL prefix -> folder) with Range, ETag and If-Match (or, as a hostile
    or bare server, without validators or ignoring ``If-Match``), and, with
    ``hub`` (repo id -> (folder, commit)), the Hub's ``resolve`` and ``revision`` endpoints."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(
        self,
        folders: dict[str, Path] | None = None,
        hub: dict[str, tuple[Path, str]] | None = None,
        delay_s: float = 0.0,
        token: str | None = None,
        validators: bool = True,
        honour_if_match: bool = True,
    ) -> None:
        super().__init__((HOST, 0), _Handler)
        #: send ETag and Last-Modified (False: neither, like some plain HTTP servers)
        self.validators = validators
        #: answer 412 to a stale If-Match (False: serve the current bytes regardless)
        self.honour_if_match = honour_if_match
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

    def _send(
        self, status: int, body: bytes, headers: dict[str, str], head: bool = False, length: int | None = None
    ) -> None:
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body) if length is None else length))
        self.end_headers()
        # the request stops counting as active before its body goes out: the client cannot
        # finish reading it (and start its next request) before that, so the server's count
        # never runs ahead of the client's requests in flight
        self._leave()
        if not head:
            self.wfile.write(body)
        self.server.counters.add(not head, 0 if head else len(body))

    def _leave(self) -> None:
        if getattr(self, "_active", False):
            self._active = False
            self.server.counters.leave()

    def _api(self) -> bool:
        """The Hub's API endpoints that ``huggingface_hub`` (LeRobot's downloads, ``datasets``'
        streaming) and roboframes call: revision, refs, tree and paths-info."""
        url = urlsplit(self.path)
        parts = [unquote(p) for p in url.path.split("/") if p]
        if len(parts) < 4 or parts[:2] != ["api", "datasets"]:
            return False
        repo = f"{parts[2]}/{parts[3]}"
        # /api/datasets/{repo} is the dataset's info at main
        verb, rest = (parts[4], parts[5:]) if len(parts) > 4 else ("revision", ["main"])
        js = {"Content-Type": "application/json"}
        if repo not in self.server.hub:
            self._send(404, b'{"error": "Repository Not Found"}', {**js, "X-Error-Code": "RepoNotFound"})
            return True
        folder, commit = self.server.hub[repo]
        revs = (commit, "main", "v3.0")

        def entries(below: str, recursive: bool) -> list[dict[str, Any]]:
            base = folder / below if below else folder
            items = base.rglob("*") if recursive else base.glob("*")
            out = []
            for p in sorted(items):
                rel = p.relative_to(folder).as_posix()
                if p.is_dir():
                    out.append({"type": "directory", "path": rel, "oid": commit})
                else:
                    out.append({"type": "file", "path": rel, "size": p.stat().st_size, "oid": etag_of(p).strip('"')})
            return out

        if verb == "revision" and rest:
            rev = "/".join(rest)
            if rev not in revs:
                self._send(404, b'{"error": "Revision Not Found"}', {**js, "X-Error-Code": "RevisionNotFound"})
                return True
            files = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
            doc = {
                "id": repo,
                "sha": commit,
                "private": False,
                "lastModified": "2026-01-01T00:00:00.000Z",
                "siblings": [{"rfilename": f} for f in files],
            }
            self._send(200, json.dumps(doc).encode(), js)
        elif verb == "refs":
            doc = {
                "branches": [{"name": "main", "ref": "refs/heads/main", "targetCommit": commit}],
                "converts": [],
                "tags": [{"name": "v3.0", "ref": "refs/tags/v3.0", "targetCommit": commit}],
            }
            self._send(200, json.dumps(doc).encode(), js)
        elif verb == "tree" and rest and rest[0] in revs:
            below = "/".join(rest[1:])
            if below and not (folder / below).exists():
                self._send(404, b'{"error": "Entry Not Found"}', {**js, "X-Error-Code": "EntryNotFound"})
                return True
            recursive = "recursive=true" in (url.query or "").lower() or "recursive=1" in (url.query or "")
            self._send(200, json.dumps(entries(below, recursive)).encode(), js)
        elif verb == "paths-info" and rest and rest[0] in revs:
            from urllib.parse import parse_qs

            n = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(n).decode() if n else ""
            ctype = self.headers.get("Content-Type", "")
            paths = json.loads(body).get("paths", []) if "json" in ctype else parse_qs(body).get("paths", [])
            out = []
            for rel in paths:
                p = folder / rel
                if p.is_dir():
                    out.append({"type": "directory", "path": rel, "oid": commit})
                elif p.is_file():
                    out.append({"type": "file", "path": rel, "size": p.stat().st_size, "oid": etag_of(p).strip('"')})
            self._send(200, json.dumps(out).encode(), js)
        else:
            self._send(404, b'{"error": "Not Found"}', js)
        return True

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
            self._send(404, b"not found", {"X-Error-Code": "EntryNotFound"}, head)
            return
        size = path.stat().st_size
        etag = etag_of(path)
        headers = {
            "ETag": etag,
            "X-Repo-Commit": self._commit() or "",
            "Last-Modified": formatdate(path.stat().st_mtime, usegmt=True),
            "Accept-Ranges": "bytes",
            "Content-Type": "application/octet-stream",
        }
        if not srv.validators:
            del headers["ETag"], headers["Last-Modified"]
        want = self.headers.get("If-Match")
        if srv.honour_if_match and want is not None and want.strip() not in (etag, "*"):
            self._send(412, b"precondition failed", {"ETag": etag}, head)
            return
        rng = self.headers.get("Range")
        if rng and fault != "norange" and rng.startswith("bytes=") and "," not in rng:
            a, _, b = rng[len("bytes=") :].partition("-")
            if a == "":
                start, end = max(0, size - int(b)), size
            else:
                start, end = int(a), (int(b) + 1 if b else size)
            end = min(end, size)
            if start >= size or start >= end:
                self._send(416, b"", {"Content-Range": f"bytes */{size}"}, head)
                return
            headers["Content-Range"] = f"bytes {start}-{end - 1}/{size}"
            if fault == "trickle" and not head:
                self._trickle(206, read_range(path, start, end), headers, srv.faults.trickle_s)
                return
            self._send(206, read_range(path, start, end) if not head else b"", headers, head, length=end - start)
            return
        self._send(200, path.read_bytes() if not head else b"", headers, head, length=size)

    def _trickle(self, status: int, body: bytes, headers: dict[str, str], every_s: float) -> None:
        """Answers ``body`` one byte every ``every_s`` seconds, until the client gives up (at
        most 600 bytes: the loop ends by itself)."""
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        try:
            for i in range(min(len(body), 600)):
                self.wfile.write(body[i : i + 1])
                self.wfile.flush()
                time.sleep(every_s)
        except OSError:
            pass
        self.close_connection = True

    def do_GET(self) -> None:  # noqa: N802
        self._active = "Range" in self.headers
        if self._active:
            self.server.counters.enter()
        try:
            self._serve(head=False)
        finally:
            self._leave()

    def do_HEAD(self) -> None:  # noqa: N802
        self._serve(head=True)

    def do_POST(self) -> None:  # noqa: N802
        self._serve(head=False)

    def _commit(self) -> str | None:
        parts = [p for p in urlsplit(self.path).path.split("/") if p]
        if len(parts) >= 3 and parts[0] == "datasets":
            hub = self.server.hub.get(f"{parts[1]}/{parts[2]}")
            return hub[1] if hub else None
        return None


@contextmanager
def file_server(
    folders: dict[str, Path] | None = None,
    hub: dict[str, tuple[Path, str]] | None = None,
    delay_s: float = 0.0,
    token: str | None = None,
    validators: bool = True,
    honour_if_match: bool = True,
) -> Iterator[FileServer]:
    """A running :class:`FileServer`; stopped when the block ends."""
    srv = FileServer(folders, hub, delay_s, token, validators, honour_if_match)
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
