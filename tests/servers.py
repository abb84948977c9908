"""Real servers on 127.0.0.1 for the exporter tests, and helpers to read what reached them.

- :class:`S3Server`: moto's standalone S3 server in a thread, on a free loopback port; it
  can be stopped and started again on the same port, keeping its buckets.
- :class:`WhyLabsServer`: a small WhyLabs-compatible upload API built on ``http.server``.
  It checks every request's headers and body, hands out upload URLs on itself, keeps what
  is PUT, and answers as told: an HTTP status, a closed connection, or a stall.

Nothing here talks to anything but 127.0.0.1, and every wait is bounded.
"""

from __future__ import annotations

import json
import socket
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from moto.server import ThreadedMotoServer

from profiletel import BucketProfile, DeadLetterStore

LOOPBACK = "127.0.0.1"
AWS_ACCESS_KEY_ID = "AKIDPROFILETELTEST"
AWS_SECRET_ACCESS_KEY = "profiletel-test-secret-0d6c1e5b"
WHYLABS_API_KEY = "profiletel-test-key.9b1f.secret-4f2a:org-test"
UPLOAD_SIGNATURE = "upload-signature-7c3e"
# A stalled answer waits at most this long for release(), so no thread outlives a test
# by much even if a test forgets to release it.
STALL_LIMIT_S = 60.0

_PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy",
                    "all_proxy")


def isolate_network_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Fake AWS credentials, no instance-metadata lookups, no AWS config files, no proxies:
    boto3 and requests can reach nothing but the loopback servers the test passes them."""
    for name in _PROXY_VARIABLES + ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL",
                                    "AWS_ENDPOINT_URL_S3", "WHYLABS_API_ENDPOINT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_PROXY", f"{LOOPBACK},localhost")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", AWS_ACCESS_KEY_ID)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", AWS_SECRET_ACCESS_KEY)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))


def refused_url() -> str:
    """An http URL on a loopback port nothing listens on."""
    with socket.socket() as probe:
        probe.bind((LOOPBACK, 0))
        port = probe.getsockname()[1]
    return f"http://{LOOPBACK}:{port}"


def wait_until(predicate: Callable[[], bool], timeout_s: float, interval_s: float = 0.05) -> bool:
    """Poll ``predicate`` until it holds or ``timeout_s`` passes; returns its last value."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval_s)
    return predicate()


def column_counts(profiles: Iterable[BucketProfile]) -> dict[str, int]:
    """The summed ``counts/n`` per column over ``profiles``."""
    totals: dict[str, int] = {}
    for profile in profiles:
        for name, column in profile.view.get_columns().items():
            totals[name] = totals.get(name, 0) + int(column.get_metric("counts").n.value)
    return totals


def dead_letter_profiles(directory: Path) -> list[BucketProfile]:
    return [letter.load() for letter in DeadLetterStore(directory)]


def files_under(directory: Path) -> list[Path]:
    return sorted(path for path in directory.rglob("*") if path.is_file())


# S3


class S3Server:
    """moto's S3 server on a free loopback port."""

    def __init__(self) -> None:
        self.port = 0
        self._server: ThreadedMotoServer | None = None

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def start(self) -> None:
        server = ThreadedMotoServer(ip_address=LOOPBACK, port=self.port, verbose=False)
        server.start()
        self.port = server.get_host_and_port()[1]
        self._server = server

    @property
    def running(self) -> bool:
        return self._server is not None

    def stop(self) -> None:
        if self._server is None:
            return
        self._server.stop()
        # stop() ends serving but leaves the socket listening, so connections would hang
        # instead of being refused, and the port could not be bound again.
        wsgi_server = self._server._server
        if wsgi_server is not None:
            wsgi_server.server_close()
        self._server = None

    def client(self) -> Any:
        import boto3

        return boto3.client("s3", endpoint_url=self.url, region_name="us-east-1")

    def reset(self) -> None:
        """Forget every bucket (moto keeps them per process, across servers)."""
        import requests

        requests.post(f"{self.url}/moto-api/reset", timeout=5)


def read_bucket(client: Any, bucket: str) -> dict[str, BucketProfile]:
    """Every object in ``bucket``, by key, read back as a profile."""
    found: dict[str, BucketProfile] = {}
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for item in page.get("Contents", []):
            body = client.get_object(Bucket=bucket, Key=item["Key"])["Body"].read()
            found[item["Key"]] = BucketProfile.from_bytes(body)
    return found


# WhyLabs


@dataclass(frozen=True)
class Answer:
    """How the WhyLabs server answers one request."""

    kind: str = "ok"  # "ok", "status", "close" or "stall"
    status: int = 200
    retry_after: str | None = None


OK = Answer()
CLOSE = Answer("close")
STALL = Answer("stall")


def status(code: int, retry_after: str | None = None) -> Answer:
    return Answer("status", code, retry_after)


@dataclass(frozen=True)
class Seen:
    """One request as the server received it."""

    method: str
    path: str
    at_s: float  # time.monotonic() when its headers were read
    headers: dict[str, str]
    body: bytes


@dataclass(frozen=True)
class Upload:
    """A profile PUT to an upload URL, with what its log request said."""

    resource: str
    dataset_timestamp: int
    segment_tags: list[dict[str, str]]
    body: bytes

    def profile(self) -> BucketProfile:
        return BucketProfile.from_bytes(self.body, dataset_id=self.resource)


@dataclass
class _State:
    log_answers: deque[Answer] = field(default_factory=deque)
    upload_answers: deque[Answer] = field(default_factory=deque)
    always: Answer | None = None
    pending: dict[str, tuple[str, int, list[dict[str, str]]]] = field(default_factory=dict)
    uploads: dict[str, Upload] = field(default_factory=dict)
    seen: list[Seen] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


class WhyLabsServer:
    """A WhyLabs-compatible upload API on a free loopback port.

    ``POST /v1/log/async`` needs ``X-API-Key`` equal to ``api_key`` (else 401),
    ``X-WHYLABS-RESOURCE`` and a JSON body ``{"datasetTimestamp": int, "segmentTags":
    [{"key": str, "value": str}, ...]}`` (else 400), and answers ``{"id", "uploadUrl"}``
    with an upload URL on this server. ``PUT /upload/<id>`` needs
    ``Content-Type: application/octet-stream`` and no API key, and keeps the body.
    Every malformed request is also noted in :attr:`problems`, which a test expects empty.
    """

    def __init__(self, api_key: str = WHYLABS_API_KEY) -> None:
        self.api_key = api_key
        self._state = _State()
        self._lock = threading.Lock()
        self._release = threading.Event()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        # Where upload URLs point; None for this server. A refused port makes the exporter's
        # connection error carry the signed URL, which it must not repeat.
        self.upload_base: str | None = None

    @property
    def url(self) -> str:
        assert self._httpd is not None
        return f"http://{LOOPBACK}:{self._httpd.server_address[1]}"

    def start(self) -> None:
        handler = type("Handler", (_Handler,), {"owner": self})
        self._httpd = ThreadingHTTPServer((LOOPBACK, 0), handler)
        self._httpd.daemon_threads = True
        self._httpd.block_on_close = False
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, name="whylabs-test-server", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        self.release()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=10)

    # What the test tells it

    def answer_log(self, *answers: Answer) -> None:
        """Answer the next log requests so, in order; then normally."""
        with self._lock:
            self._state.log_answers.extend(answers)

    def answer_upload(self, *answers: Answer) -> None:
        with self._lock:
            self._state.upload_answers.extend(answers)

    def always_answer_log(self, answer: Answer | None) -> None:
        """Answer every log request so until told ``None``."""
        with self._lock:
            self._state.always = answer

    def release(self) -> None:
        """End every stall (the connection is then closed without an answer)."""
        self._release.set()

    # What the test reads

    @property
    def uploads(self) -> list[Upload]:
        with self._lock:
            return list(self._state.uploads.values())

    @property
    def seen(self) -> list[Seen]:
        with self._lock:
            return list(self._state.seen)

    def log_requests(self) -> list[Seen]:
        return [s for s in self.seen if s.method == "POST"]

    @property
    def problems(self) -> list[str]:
        with self._lock:
            return list(self._state.problems)

    # The handler's side

    def _next_answer(self, route: str) -> Answer:
        with self._lock:
            queue = self._state.log_answers if route == "log" else self._state.upload_answers
            if queue:
                return queue.popleft()
            if route == "log" and self._state.always is not None:
                return self._state.always
            return OK

    def _note(self, seen: Seen, problem: str | None = None) -> None:
        with self._lock:
            self._state.seen.append(seen)
            if problem:
                self._state.problems.append(f"{seen.method} {seen.path}: {problem}")

    def handle_log(self, request: _Handler, seen: Seen) -> None:
        problem = _check_log_request(seen, self.api_key)
        self._note(seen, problem)
        if problem:
            request.reply(int(problem[:3]), {"message": problem})
            return
        answer = self._next_answer("log")
        if request.misbehave(answer, self._release):
            return
        body = json.loads(seen.body)
        upload_id = uuid.uuid4().hex
        with self._lock:
            self._state.pending[upload_id] = (
                seen.headers["x-whylabs-resource"], body["datasetTimestamp"], body["segmentTags"]
            )
        request.reply(200, {
            "id": upload_id,
            "uploadUrl": f"{self.upload_base or self.url}/upload/{upload_id}"
            f"?X-Amz-Signature={UPLOAD_SIGNATURE}",
        })

    def handle_upload(self, request: _Handler, seen: Seen) -> None:
        upload_id = urlsplit(seen.path).path.rpartition("/")[2]
        query = parse_qs(urlsplit(seen.path).query)
        with self._lock:
            target = self._state.pending.get(upload_id)
        problem = None
        if target is None:
            problem = "404 unknown upload id"
        elif query.get("X-Amz-Signature") != [UPLOAD_SIGNATURE]:
            problem = "403 missing upload signature"
        elif seen.headers.get("content-type") != "application/octet-stream":
            problem = f"400 Content-Type is {seen.headers.get('content-type')!r}"
        elif "x-api-key" in seen.headers:
            problem = "400 the API key was sent to the upload URL"
        self._note(seen, problem)
        if problem:
            request.reply(int(problem[:3]), {"message": problem})
            return
        answer = self._next_answer("upload")
        if request.misbehave(answer, self._release):
            return
        assert target is not None
        with self._lock:
            self._state.uploads[upload_id] = Upload(*target, seen.body)
        request.reply(200, None)


def _check_log_request(seen: Seen, api_key: str) -> str | None:
    """The status and reason to refuse a log request with, or ``None`` if it is sound."""
    if seen.headers.get("x-api-key") != api_key:
        return "401 wrong or missing X-API-Key"
    if not seen.headers.get("x-whylabs-resource"):
        return "400 missing X-WHYLABS-RESOURCE"
    if not seen.headers.get("content-type", "").startswith("application/json"):
        return f"400 Content-Type is {seen.headers.get('content-type')!r}"
    try:
        body = json.loads(seen.body)
    except ValueError:
        return "400 body is not JSON"
    if not isinstance(body, dict) or set(body) != {"datasetTimestamp", "segmentTags"}:
        return f"400 body has the wrong fields: {body!r}"
    if type(body["datasetTimestamp"]) is not int or not isinstance(body["segmentTags"], list):
        return f"400 body has the wrong types: {body!r}"
    for tag in body["segmentTags"]:
        if not isinstance(tag, dict) or set(tag) != {"key", "value"}:
            return f"400 bad segment tag: {tag!r}"
    return None


class _Handler(BaseHTTPRequestHandler):
    owner: WhyLabsServer
    # Keep-alive, as a real API does, so the exporter's session reuses connections.
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        seen = self._read()
        if seen.path == "/v1/log/async":
            self.owner.handle_log(self, seen)
        else:
            self.owner._note(seen, "404 unknown path")
            self.reply(404, {"message": "not found"})

    def do_PUT(self) -> None:
        seen = self._read()
        if seen.path.startswith("/upload/"):
            self.owner.handle_upload(self, seen)
        else:
            self.owner._note(seen, "404 unknown path")
            self.reply(404, {"message": "not found"})

    def _read(self) -> Seen:
        at_s = time.monotonic()
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        headers = {name.lower(): value for name, value in self.headers.items()}
        return Seen(self.command, self.path, at_s, headers, body)

    def reply(self, code: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(payload).encode() if payload is not None else b""
        self.send_response(code)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def misbehave(self, answer: Answer, release: threading.Event) -> bool:
        """Answer as told unless told "ok"; returns whether it did."""
        if answer.kind == "ok":
            return False
        if answer.kind == "status":
            extra = {"Retry-After": answer.retry_after} if answer.retry_after else {}
            self.reply(answer.status, {"message": f"told to answer {answer.status}"}, extra)
            return True
        if answer.kind == "stall":
            release.wait(STALL_LIMIT_S)
        self.close_connection = True
        return True

    def log_message(self, format: str, *args: Any) -> None:
        pass  # the tests read self.owner.seen instead


# Fixtures shared by every test module that needs a server; conftest.py registers this
# module as a pytest plugin.


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[S3Server]:
    """A moto S3 server on loopback, with AWS settings that cannot reach any other host."""
    isolate_network_env(monkeypatch, tmp_path)
    server = S3Server()
    server.start()
    try:
        yield server
    finally:
        if not server.running:  # a test may have stopped it to fake an outage
            server.start()
        server.reset()
        server.stop()


@pytest.fixture
def whylabs(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[WhyLabsServer]:
    """A WhyLabs-compatible server on loopback, with the WHYLABS_* variables aimed at it."""
    isolate_network_env(monkeypatch, tmp_path)
    server = WhyLabsServer()
    server.start()
    monkeypatch.setenv("WHYLABS_API_KEY", WHYLABS_API_KEY)
    monkeypatch.setenv("WHYLABS_API_ENDPOINT", server.url)
    monkeypatch.delenv("WHYLABS_DEFAULT_ORG_ID", raising=False)
    try:
        yield server
    finally:
        server.stop()
