"""The /proc reader against canned trees (tests/fixtures/proc) and against the real /proc."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from detectors import procfs

PROC = str(Path(__file__).resolve().parent.parent / "fixtures" / "proc")
A, B, C, D, E, F = ("a" * 64, "b" * 64, "c" * 64, "d" * 64, "e" * 64, "f" * 64)
G = "0123456789abcdef" * 4


@pytest.mark.parametrize(
    ("pid", "container_id", "runtime", "rootless_uid"),
    [
        (301, A, "docker", None),  # cgroup v1 /docker/<id>
        (302, B, "docker", None),  # v2 systemd docker-<id>.scope
        (303, C, "docker", 1003),  # rootless user@<uid>.service/.../docker-<id>.scope
        (304, D, "containerd", None),
        (305, E, "crio", None),
        (306, F, "podman", None),  # libpod-<id>.scope/container
        (308, G, "docker", None),  # v1 systemd driver, unified line says /
        (100, None, None, None),  # a host process in a session scope
        (307, None, None, None),  # crio-conmon is the monitor, not the container
    ],
)
def test_each_cgroup_shape_names_its_container(pid, container_id, runtime, rootless_uid):
    """Every cgroup layout maps to the container id and runtime, or to none for the host."""
    info = procfs.read_process(pid, proc=PROC)
    assert info is not None
    assert (info.container_id, info.runtime, info.rootless_uid) == (
        container_id,
        runtime,
        rootless_uid,
    )


def test_comm_with_parentheses_and_spaces():
    """A command containing ')' and spaces keeps its comm and the right starttime."""
    info = procfs.read_process(200, proc=PROC)
    assert info is not None
    assert info.comm == "my (odd)) job"
    assert info.starttime == 6000
    assert info.uid == 1002


def test_host_process_fields():
    """Real uid from status, command line joined, program is argv[0]'s basename."""
    info = procfs.read_process(100, proc=PROC)
    assert info is not None
    assert info.uid == 1001
    assert info.command == "/usr/bin/python3 train.py --epochs 10"
    assert info.program == "python3"
    assert info.starttime == 5000


def test_empty_cmdline_falls_back_to_comm():
    """A kernel thread (empty cmdline) shows as [comm]."""
    info = procfs.read_process(401, proc=PROC)
    assert info is not None
    assert (info.command, info.program) == ("[kworker/0:1]", "kworker/0:1")


@pytest.mark.parametrize("pid", [99999, 500, 0, -3])
def test_vanished_or_broken_pid_is_gone(pid):
    """No directory, or a stat that cannot be parsed: gone (None), never an exception."""
    assert procfs.read_process(pid, proc=PROC) is None


def test_boot_facts_from_the_tree():
    """The boot time and boot id come from the proc= root."""
    assert procfs.boot_time(PROC) == 1764547200.0
    assert procfs.boot_id(PROC) == "5f2c8d1e-0000-4000-8000-000000000001"
    assert procfs.started_at(5000, 1764547200.0, 100) == 1764547250.0


def test_real_proc_self_and_a_child():
    """Against the real /proc: this process and a child sleeping under a name with ')'."""
    me = procfs.read_process(os.getpid())
    assert me is not None
    assert me.uid == os.getuid()
    assert me.program.startswith("python")
    child = subprocess.Popen(
        [sys.executable, "-c", "import time; print('ready', flush=True); time.sleep(30)", "x)y"],
        stdout=subprocess.PIPE,
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline() == b"ready\n"  # past exec: its own cmdline is in place
        info = procfs.read_process(child.pid)
        assert info is not None
        assert info.command.endswith("x)y")
        assert info.starttime > 0
        assert info.starttime >= me.starttime
    finally:
        child.kill()
        child.wait()
    assert procfs.read_process(child.pid) is None
    assert procfs.boot_time() is not None
    assert procfs.boot_id() is not None


@given(st.text(max_size=300))
def test_cgroup_parser_never_raises(text):
    """Any cgroup text gives a container or None."""
    result = procfs.container_from_cgroup(text)
    assert result is None or len(result.container_id) == 64


@given(st.text(max_size=300))
def test_stat_parser_never_raises(text):
    """Any stat text gives (comm, starttime) or None."""
    result = procfs.parse_stat(text)
    assert result is None or result[1] >= 0


@given(st.text(alphabet=st.characters(blacklist_characters="\0\n"), max_size=40))
def test_stat_parser_finds_starttime_after_any_comm(comm):
    """Whatever the comm holds (parentheses, spaces), starttime is field 22."""
    fields = ["S", *["1"] * 18, "424242", *["0"] * 30]
    text = f"7 ({comm}) " + " ".join(fields)
    assert procfs.parse_stat(text) == (comm, 424242)


@given(st.binary(max_size=600))
def test_cmdline_parser_is_bounded(raw):
    """Any cmdline bytes give a command within the bound and a program name."""
    command, program = procfs.parse_cmdline(raw, "comm")
    assert len(command) <= procfs.MAX_COMMAND_CHARS
    assert program


def test_one_field_readers():
    """The single-field readers answer from the same tree, None for a gone PID."""
    assert procfs.container_id(301, PROC) == A
    assert procfs.container_id(100, PROC) is None
    assert procfs.real_uid(100, PROC) == 1001
    assert procfs.starttime(200, PROC) == 6000
    assert procfs.command_line(100, PROC) == "/usr/bin/python3 train.py --epochs 10"
    assert procfs.starttime(99999, PROC) is None
    assert procfs.real_uid(99999, PROC) is None


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to start a process as nobody")
def test_hostile_process_of_an_unprivileged_user_reads_safely():
    """A user's process with a ') S 1 2' comm, newlines and bad UTF-8 in argv: parsed right."""
    script = (
        "import sys, time\n"
        "open('/proc/self/comm', 'w').write(') S 1 2 3 99')\n"
        "print('ready', flush=True)\n"
        "time.sleep(30)\n"
    )
    child = subprocess.Popen(
        [
            "setpriv",
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "/usr/bin/python3",
            "-c",
            script,
            "a)\n b",
            "x" * 5000,
            b"\xff\xfe",
        ],
        stdout=subprocess.PIPE,
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline() == b"ready\n"
        info = procfs.read_process(child.pid)
        assert info is not None
        assert info.comm == ") S 1 2 3 99"
        assert info.uid == 65534
        assert info.starttime == procfs.parse_stat(Path(f"/proc/{child.pid}/stat").read_text())[1]  # type: ignore[index]
        assert info.starttime > 99
        assert len(info.command) <= procfs.MAX_COMMAND_CHARS
        assert info.program == "python3"
        assert info.container_id is None
    finally:
        child.kill()
        child.wait()
