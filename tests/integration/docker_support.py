"""Fixtures and checks shared by the Docker integration tests (real dockerd, busybox image)."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.integration.watcher_support import complete_lines

docker = pytest.importorskip("docker")

IMAGE = os.environ.get("DS01_TEST_IMAGE", "ds01-test/busybox:latest")
ROOT = Path(__file__).resolve().parents[2]


def docker_client(base_url=None):
    """Return a client for the shared (or given) dockerd; skip the test when none answers."""
    try:
        client = docker.DockerClient(base_url=base_url) if base_url else docker.from_env()
        client.ping()
        client.images.get(IMAGE)
    except Exception as exc:
        pytest.skip(f"no Docker engine with {IMAGE} (run scripts/ensure-docker): {exc}")
    return client


class Containers:
    """Creates labelled test containers and removes every one of them at the end."""

    def __init__(self, client):
        self.client = client
        self.run_id = uuid.uuid4().hex[:12]

    def create(self, command, *, labels=None, **kwargs):
        """Create a container labelled as this test's (network none, busybox)."""
        all_labels = {"ds01.test": "1", "ds01.test.run": self.run_id, **(labels or {})}
        return self.client.containers.create(
            IMAGE, command, labels=all_labels, network_mode="none", **kwargs
        )

    def cleanup(self):
        """Remove every container this test created."""
        with contextlib.suppress(Exception):
            for c in self.client.containers.list(
                all=True, filters={"label": f"ds01.test.run={self.run_id}"}
            ):
                with contextlib.suppress(Exception):
                    c.remove(force=True)


def client_for(host=None):
    """A client with a short timeout for the given (or the shared) dockerd."""
    if host is None:
        return docker.from_env(version="1.41", timeout=20)
    return docker.DockerClient(base_url=host, version="1.41", timeout=20)


def lifecycle(containers, index, actions, lock):
    """create, start, stop and remove one container; record when each step happened."""
    done = {}
    t0 = time.time()
    c = containers.create(["sleep", "30"], labels={"ds01.user": f"user{index % 5}"})
    done["create"] = (t0, time.time())
    _start_stop_remove(c, done)
    with lock:
        actions[c.id] = done


def _start_stop_remove(c, done):
    """Start, stop and remove ``c``, noting in ``done`` when each step began and ended."""
    for action, call in (
        ("start", c.start),
        ("stop", lambda: c.stop(timeout=0)),
        ("remove", c.remove),
    ):
        t0 = time.time()
        call()
        done[action] = (t0, time.time())


def burst(containers, count, actions, *, workers=6, on_progress=None):
    """Run ``count`` lifecycles from a thread pool; ``on_progress(n)`` after each one in order."""
    lock = threading.Lock()
    with ThreadPoolExecutor(workers) as pool:
        futures = [pool.submit(lifecycle, containers, i, actions, lock) for i in range(count)]
        for n, future in enumerate(futures, 1):
            future.result()
            if on_progress is not None:
                on_progress(n)


def tolerant_lifecycle(host, actions, lock, labels):
    """Run one lifecycle, waiting out a dockerd restart for create; record the steps it accepted."""
    done: dict = {}
    deadline = time.monotonic() + 60
    while True:
        t0 = time.time()
        try:
            c = client_for(host).containers.create(
                IMAGE, ["sleep", "30"], network_mode="none", labels=labels
            )
            break
        except Exception:
            if time.monotonic() > deadline:
                return
            time.sleep(0.2)
    done["create"] = (t0, time.time())
    with contextlib.suppress(Exception):  # the daemon may go away under this lifecycle
        _start_stop_remove(c, done)
    with lock:
        actions[c.id] = done


def burst_across_restart(dockerd, actions, labels, *, count, restart_after):
    """Run ``count`` tolerant lifecycles; restart ``dockerd`` once ``restart_after`` are done.

    Afterwards remove whatever the restart left behind and return the ids whose end the
    log must show: every lifecycle's container and every leftover.
    """
    lock = threading.Lock()
    with ThreadPoolExecutor(3) as pool:
        futures = [
            pool.submit(tolerant_lifecycle, dockerd.host, actions, lock, labels)
            for _ in range(count)
        ]
        while sum(f.done() for f in futures) < restart_after:
            time.sleep(0.05)
        dockerd.stop()  # by pid; without live-restore running containers stop with it
        dockerd.start()
        for future in futures:
            future.result()
    client = client_for(dockerd.host)
    leftovers = [c.id for c in client.containers.list(all=True)]
    for cid in leftovers:
        client.containers.get(cid).remove(force=True)
    return set(actions) | set(leftovers)


def settled_ids(events):
    """Container ids whose end (removal, or exit found by reconciliation) is in the log."""
    return {
        e["details"].get("container_id")
        for e in events
        if e["event_type"] in ("container.remove", "detection.container_exited")
    }


class Runner:
    """The standalone Docker source (python -m watcher.docker) as a child process."""

    def __init__(self, tmp: Path, *, docker_host=None, slow_submit=0.0, ping_interval=None):
        self.ping_interval = ping_interval
        self.events_file = tmp / "events.jsonl"
        self.state_dir = tmp / "state"
        self.stderr_path = tmp / "runner.stderr"
        self.docker_host = docker_host
        self.slow_submit = slow_submit
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, *, wait_ready=True):
        """Start the source; by default wait until it connected and reconciled."""
        cmd = [
            sys.executable,
            "-m",
            "watcher.docker",
            "--events-file",
            str(self.events_file),
            "--state-dir",
            str(self.state_dir),
        ]
        if self.docker_host:
            cmd += ["--docker-host", self.docker_host]
        if self.slow_submit:
            cmd += ["--slow-submit", str(self.slow_submit)]
        if self.ping_interval:
            cmd += ["--ping-interval", str(self.ping_interval)]
        with self.stderr_path.open("ab") as err:
            self.proc = subprocess.Popen(cmd, cwd=ROOT, stderr=err, stdout=subprocess.DEVNULL)
        if wait_ready:
            state = self.state_dir / "docker-cursor.json"
            before = state.stat().st_mtime_ns if state.exists() else None
            deadline = time.monotonic() + 30
            # The cursor is saved right after the first reconciliation: connected.
            while time.monotonic() < deadline:
                if state.exists() and state.stat().st_mtime_ns != before:
                    return
                assert self.proc.poll() is None, self.stderr()
                time.sleep(0.05)
            pytest.fail(f"the Docker source did not connect: {self.stderr()}")

    def kill9(self):
        """SIGKILL the source and reap it."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self):
        """SIGTERM the source and wait for its clean exit."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)

    def stderr(self):
        """Return what the source said on stderr."""
        return self.stderr_path.read_text() if self.stderr_path.exists() else ""

    def events(self):
        """Return the events logged so far, decoded."""
        if not self.events_file.exists():
            return []
        # Only lines that end in a newline: the runner may be mid-append while we poll.
        return [json.loads(line) for line in complete_lines(self.events_file.read_bytes())]

    def wait_for(self, predicate, timeout=60.0):
        """Poll the log until ``predicate(events)`` holds; return the events."""
        deadline = time.monotonic() + timeout
        while True:
            events = self.events()
            if predicate(events):
                return events
            if time.monotonic() > deadline:
                pytest.fail(f"timed out waiting on the log; runner said: {self.stderr()[-2000:]}")
            time.sleep(0.1)


def for_container(events, container_id):
    return [e for e in events if e.get("details", {}).get("container_id") == container_id]


def duplicates(events):
    """Observed (not inferred) events logged more than once."""
    keys = Counter(
        (e["event_type"], e["details"].get("container_id"), e["timestamp"])
        for e in events
        if e.get("details", {}).get("container_id") and not e["details"].get("inferred")
    )
    return {key: n for key, n in keys.items() if n > 1}


def gap_windows(events):
    """(since, until) in epoch seconds of every watcher.gap."""
    from ds01_events.envelope import parse_timestamp

    return [
        (
            parse_timestamp(e["details"]["since"]).timestamp(),
            parse_timestamp(e["details"]["until"]).timestamp(),
        )
        for e in events
        if e["event_type"] == "watcher.gap"
    ]


EXPECTED = {
    "create": "container.create",
    "start": "container.start",
    "stop": "container.stop",
    "remove": "container.remove",
}


def unexplained(events, actions):
    """Driver actions whose event is neither logged, inferred, nor inside a reported gap.

    ``actions`` maps container id -> {action: (t_before, t_after)} for actions that
    succeeded.
    """
    gaps = gap_windows(events)
    missing = []
    for cid, done in actions.items():
        mine = for_container(events, cid)
        logged = {e["event_type"] for e in mine if not e["details"].get("inferred")}
        inferred = [e for e in mine if e["details"].get("inferred")]
        for action, (t0, t1) in done.items():
            if EXPECTED[action] in logged:
                continue
            if inferred:
                continue
            if any(since - 1 <= t1 and t0 <= until + 1 for since, until in gaps):
                continue
            missing.append((cid[:12], action))
    return missing


class PrivateDockerd:
    """A throwaway dockerd on its own socket, data and exec roots; restartable by pid."""

    def __init__(self):
        self.dir = Path(tempfile.mkdtemp(prefix="ds01d-", dir="/tmp"))
        self.sock = self.dir / "docker.sock"
        self.host = f"unix://{self.sock}"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self):
        """Start dockerd and wait until it answers."""
        if shutil.which("dockerd") is None:
            pytest.skip("dockerd is not installed")
        cmd = [
            "dockerd",
            "-H",
            self.host,
            "--data-root",
            str(self.dir / "data"),
            "--exec-root",
            str(self.dir / "exec"),
            "--pidfile",
            str(self.dir / "docker.pid"),
            "--bridge=none",
            "--iptables=false",
            "--ip-masq=false",
            "--ip6tables=false",
            "--containerd-namespace",
            "ds01test",
            "--containerd-plugins-namespace",
            "ds01test-plugins",
        ]
        with (self.dir / "dockerd.log").open("ab") as log:
            self.proc = subprocess.Popen(
                cmd, stdout=log, stderr=log, stdin=subprocess.DEVNULL, start_new_session=True
            )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self._answers():
                return
            assert self.proc.poll() is None, (self.dir / "dockerd.log").read_text()[-2000:]
            time.sleep(0.2)
        pytest.fail("private dockerd did not answer in 60 s")

    def _answers(self):
        try:
            docker.DockerClient(base_url=self.host).ping()
        except Exception:
            return False
        return True

    def _stop_leftover_containerd(self):
        """After a SIGKILL of dockerd its containerd may outlive it: stop that one, by pid."""
        pidfile = self.dir / "exec" / "containerd" / "containerd.pid"
        with contextlib.suppress(OSError, ValueError):
            os.kill(int(pidfile.read_text().strip()), signal.SIGTERM)

    def load_image(self):
        """Copy the test image from the shared dockerd."""
        save = subprocess.Popen(["docker", "save", IMAGE], stdout=subprocess.PIPE)
        subprocess.run(
            ["docker", "-H", self.host, "load", "-q"],
            stdin=save.stdout,
            check=True,
            capture_output=True,
        )
        save.wait(60)

    def stop(self, sig=signal.SIGTERM):
        """Signal dockerd by pid and wait for it to exit (SIGKILL leaves containers running)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)

    def destroy(self):
        """Remove its containers, stop it and delete its directories."""
        with contextlib.suppress(Exception):
            client = docker.DockerClient(base_url=self.host)
            for c in client.containers.list(all=True):
                c.remove(force=True)
        self.stop()
        self._stop_leftover_containerd()
        for root in ("exec", "data"):
            subprocess.run(["umount", "-R", str(self.dir / root)], capture_output=True, check=False)
        shutil.rmtree(self.dir, ignore_errors=True)


@contextlib.contextmanager
def private_dockerd(*, start=True):
    """A PrivateDockerd (started, with the test image, unless ``start`` is False); destroyed after."""
    daemon = PrivateDockerd()
    try:
        if start:
            daemon.start()
            daemon.load_image()
        yield daemon
    finally:
        daemon.destroy()
