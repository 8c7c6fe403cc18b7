"""Fetch the exporter's /metrics with a hard deadline on the whole answer.

Every socket operation gets only the time left until one deadline, so a silent socket,
a slow trickle and a stuck gather all end by ``timeout`` seconds; a connect that is
refused ends at once. The bytes are then read by `http.client`'s own response parser,
which tells a whole answer (Content-Length met, chunked stream ended) from a cut-off one.
Never raises: every way it can fail is a `ProbeAnswer` with ``error`` set.
"""

from __future__ import annotations

import errno
import http.client
import io
import socket
import time
from typing import TYPE_CHECKING, Literal
from urllib.parse import urlsplit

import msgspec

if TYPE_CHECKING:
    from collections.abc import Callable

# Far above a real exporter's answer (8 GPUs x 7 MIG instances: well under 2 MB).
MAX_ANSWER_BYTES = 32 * 1024 * 1024

# refused: nothing listens (down); timeout: no whole answer in time (hung when repeated);
# cut: the connection ended early or the answer is not whole HTTP; http: not 200.
FailureKind = Literal["refused", "timeout", "cut", "http"]


class ProbeAnswer(msgspec.Struct, frozen=True):
    """One probe: the body when it came whole, else what went wrong."""

    took_s: float
    body: str | None = None
    error: str | None = None
    kind: FailureKind | None = None


class MetricsUrl(msgspec.Struct, frozen=True):
    """Where to connect and what to ask for."""

    host: str
    port: int
    path: str
    text: str


def parse_metrics_url(url: str) -> MetricsUrl:
    """Check a ``--dcgm-url``; raises ValueError with one line saying what to fix."""
    parts = urlsplit(url)
    if parts.scheme != "http" or not parts.hostname:
        msg = f"--dcgm-url {url!r}: give an http:// URL (e.g. http://127.0.0.1:9400/metrics) or off"
        raise ValueError(msg)
    try:
        port = parts.port or 80
    except ValueError:
        msg = f"--dcgm-url {url!r}: the port is not a number between 0 and 65535"
        raise ValueError(msg) from None
    path = parts.path or "/metrics"
    if path.rstrip("/").endswith("/health"):
        # /health answers OK while collection is stuck: probing it would see nothing.
        msg = f"--dcgm-url {url!r}: probe /metrics, not /health (it says OK while stuck)"
        raise ValueError(msg)
    if parts.query:
        path += "?" + parts.query
    return MetricsUrl(host=parts.hostname, port=port, path=path, text=url)


def fetch_metrics(
    url: MetricsUrl,
    timeout: float,
    *,
    clock: Callable[[], float] = time.monotonic,
    max_bytes: int = MAX_ANSWER_BYTES,
) -> ProbeAnswer:
    """GET ``url`` within ``timeout`` seconds in all (connect, send, every read)."""
    start = clock()
    raw = bytearray()
    try:
        _receive(url, start + timeout, clock, raw, max_bytes)
    except TimeoutError:
        got = f" after {len(raw)} bytes" if raw else " (no answer)"
        return _failed(start, clock, "timeout", f"no whole answer within {timeout:g} s{got}")
    except _TooLarge:
        return _failed(start, clock, "cut", f"answer larger than {max_bytes} bytes")
    except OSError as exc:
        return _failed(start, clock, *_os_failure(exc, url, len(raw)))
    return _read_response(bytes(raw), start, clock)


def _os_failure(exc: OSError, url: MetricsUrl, got: int) -> tuple[FailureKind, str]:
    if isinstance(exc, ConnectionRefusedError):
        return "refused", "connection refused"
    if exc.errno in (errno.ECONNRESET, errno.EPIPE):
        return "cut", f"connection reset after {got} bytes"
    if isinstance(exc, socket.gaierror):
        return "refused", f"cannot resolve {url.host}: {exc.strerror}"
    return "refused", exc.strerror or repr(exc)


class _TooLarge(Exception):
    pass


def _receive(
    url: MetricsUrl,
    deadline: float,
    clock: Callable[[], float],
    raw: bytearray,
    max_bytes: int,
) -> None:
    """Read the raw answer into ``raw`` until the server closes; TimeoutError at ``deadline``."""

    def left() -> float:
        remaining = deadline - clock()
        if remaining <= 0:
            raise TimeoutError
        return remaining

    with socket.create_connection((url.host, url.port), timeout=left()) as sock:
        sock.settimeout(left())
        sock.sendall(_request(url))
        while True:
            sock.settimeout(left())
            chunk = sock.recv(65536)
            if not chunk:
                return
            raw += chunk
            if len(raw) > max_bytes:
                raise _TooLarge


def _request(url: MetricsUrl) -> bytes:
    # HTTP/1.1 so a Go server streams a large answer chunked: the last chunk marks the end,
    # which is what tells a whole answer from one its write timeout cut off.
    host = url.host if ":" not in url.host else f"[{url.host}]"
    return (
        f"GET {url.path} HTTP/1.1\r\nHost: {host}:{url.port}\r\n"
        "User-Agent: ds01-watcher\r\nAccept: text/plain\r\nConnection: close\r\n\r\n"
    ).encode("ascii")


class _Received:
    """Hands `http.client.HTTPResponse` the bytes already read, as if from a socket."""

    def __init__(self, data: bytes) -> None:
        self._data = data

    def makefile(self, _mode: str) -> io.BytesIO:
        return io.BytesIO(self._data)


def _read_response(raw: bytes, start: float, clock: Callable[[], float]) -> ProbeAnswer:
    if not raw:
        return _failed(start, clock, "cut", "empty answer (connection closed)")
    response = http.client.HTTPResponse(_Received(raw))  # type: ignore[arg-type]
    try:
        response.begin()
        body = response.read()
    except http.client.IncompleteRead as exc:
        return _failed(start, clock, "cut", f"answer cut off after {len(exc.partial)} bytes")
    except (http.client.HTTPException, ValueError) as exc:
        return _failed(start, clock, "cut", f"not a whole HTTP answer: {exc!r}"[:200])
    if response.status != 200:  # noqa: PLR2004 - HTTP OK
        return _failed(start, clock, "http", f"HTTP {response.status} {response.reason}")
    if not body:
        return _failed(start, clock, "cut", "empty answer (HTTP 200, no body)")
    return ProbeAnswer(took_s=clock() - start, body=body.decode("utf-8", "replace"))


def _failed(start: float, clock: Callable[[], float], kind: FailureKind, error: str) -> ProbeAnswer:
    return ProbeAnswer(took_s=clock() - start, error=error, kind=kind)
