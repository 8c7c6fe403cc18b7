"""The probe on real loopback sockets: whole, cut, empty, silent and trickling answers."""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from dcgm_support import Collected, free_port

from watcher.dcgm.job import DcgmProbe
from watcher.dcgm.probe import fetch_metrics, parse_metrics_url
from watcher.dcgm.watchdog import WatchdogPolicy

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

pytestmark = pytest.mark.integration

BODY = (Path(__file__).resolve().parents[1] / "fixtures" / "dcgm" / "mig-a100.prom").read_bytes()


def _head(extra: str = "") -> bytes:
    return f"HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\n{extra}\r\n".encode()


def whole(conn: socket.socket) -> None:
    conn.sendall(_head(f"Content-Length: {len(BODY)}\r\n") + BODY)


def chunked(conn: socket.socket) -> None:
    half = len(BODY) // 2
    parts = [BODY[:half], BODY[half:]]
    data = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in parts)
    conn.sendall(_head("Transfer-Encoding: chunked\r\n") + data + b"0\r\n\r\n")


def chunked_cut(conn: socket.socket) -> None:
    """The exporter's write timeout: chunks stop, the connection closes, no last chunk."""
    half = len(BODY) // 2
    conn.sendall(_head("Transfer-Encoding: chunked\r\n") + b"%x\r\n%s\r\n" % (half, BODY[:half]))


def short_body(conn: socket.socket) -> None:
    conn.sendall(_head(f"Content-Length: {len(BODY)}\r\n") + BODY[: len(BODY) // 3])


def close_delimited_cut(conn: socket.socket) -> None:
    """No length at all (HTTP/1.0 style): cut in the middle of a line."""
    conn.sendall(b"HTTP/1.0 200 OK\r\n\r\n" + BODY[: len(BODY) - 7])


def empty(conn: socket.socket) -> None:
    conn.close()


def headers_only(conn: socket.socket) -> None:
    conn.sendall(_head("Content-Length: 0\r\n"))


def server_error(conn: socket.socket) -> None:
    conn.sendall(b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n\r\n")


def silent(conn: socket.socket) -> None:
    time.sleep(5)


def trickle(conn: socket.socket) -> None:
    """A byte every 50 ms: each read is quick, the whole answer never comes in time."""
    conn.sendall(_head())
    for byte in BODY:
        conn.sendall(bytes([byte]))
        time.sleep(0.05)


@pytest.fixture
def serve() -> Iterator[Callable[[Callable[[socket.socket], None]], str]]:
    """Run a loopback server answering every connection with ``handler``; give its URL."""
    servers: list[socket.socket] = []

    def start(handler: Callable[[socket.socket], None]) -> str:
        listener = socket.create_server(("127.0.0.1", 0))
        servers.append(listener)

        def loop() -> None:
            while True:
                try:
                    conn, _ = listener.accept()
                except OSError:
                    return
                threading.Thread(target=_answer, args=(handler, conn), daemon=True).start()

        threading.Thread(target=loop, daemon=True).start()
        return f"http://127.0.0.1:{listener.getsockname()[1]}/metrics"

    yield start
    for listener in servers:
        listener.close()


def _answer(handler: Callable[[socket.socket], None], conn: socket.socket) -> None:
    try:
        conn.recv(65536)
        handler(conn)
    except OSError:
        pass
    finally:
        conn.close()


@pytest.mark.parametrize("handler", [whole, chunked])
def test_whole_answers_come_back(serve, handler) -> None:  # type: ignore[no-untyped-def]
    """Content-Length and chunked answers are read whole."""
    answer = fetch_metrics(parse_metrics_url(serve(handler)), 2.0)
    assert answer.error is None
    assert answer.body == BODY.decode()


@pytest.mark.parametrize(
    ("handler", "kind"),
    [
        (chunked_cut, "cut"),
        (short_body, "cut"),
        (empty, "cut"),
        (headers_only, "cut"),
        (server_error, "http"),
    ],
)
def test_cut_and_empty_answers_are_failures(serve, handler, kind) -> None:  # type: ignore[no-untyped-def]
    """A cut-off chunked stream, a short body, nothing, or a 500: failures with a reason."""
    answer = fetch_metrics(parse_metrics_url(serve(handler)), 2.0)
    assert answer.body is None
    assert answer.kind == kind, answer
    assert answer.error


@pytest.mark.parametrize("handler", [silent, trickle])
def test_the_deadline_holds_for_the_whole_answer(serve, handler) -> None:  # type: ignore[no-untyped-def]
    """A silent socket and a trickling one both end at the timeout, not per read."""
    started = time.monotonic()
    answer = fetch_metrics(parse_metrics_url(serve(handler)), 1.0)
    took = time.monotonic() - started
    assert answer.kind == "timeout", answer
    assert 0.9 <= took < 1.5, took


def test_refused_is_its_own_kind() -> None:
    """Nothing listening: refused at once (down, not hung)."""
    answer = fetch_metrics(parse_metrics_url(f"http://127.0.0.1:{free_port()}/metrics"), 2.0)
    assert answer.kind == "refused"
    assert answer.took_s < 1.0


@pytest.mark.parametrize("handler", [chunked_cut, close_delimited_cut, short_body])
def test_repeated_cut_answers_make_it_hung(serve, handler) -> None:  # type: ignore[no-untyped-def]
    """K cut-off answers in a row are hung, even one whose HTTP framing cannot tell."""
    collected = Collected()
    probe = DcgmProbe(
        serve(handler),
        collected.submit,
        policy=WatchdogPolicy(hung_after=3),
        timeout=2.0,
        say=collected.say,
    )
    for _ in range(3):
        probe.probe()
    failures = collected.of("monitoring.scrape_failure")
    assert [f["state"] for f in failures] == ["hung"]
    assert failures[0]["consecutive"] == 3
    assert "cut off" in failures[0]["error"]


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:9400/health",
        "https://127.0.0.1:9400/metrics",
        "127.0.0.1:9400",
        "http://127.0.0.1:99999/metrics",
    ],
)
def test_bad_urls_are_one_line(url: str) -> None:
    """/health, https, no scheme or a bad port: one ValueError line saying what to give."""
    with pytest.raises(ValueError, match="--dcgm-url") as info:
        parse_metrics_url(url)
    assert "\n" not in str(info.value)
