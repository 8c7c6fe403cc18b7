"""The fake NVML library for tests and benches: build it, write fixtures, run children.

pynvml loads ``libnvidia-ml.so.1`` by soname, so the fake can only be chosen through
``LD_LIBRARY_PATH`` before a process starts: code that talks to NVML runs in a child
Python with ``FakeNvml.env()``. Every child run through ``FakeNvml.run_python`` also
reports which libnvidia-ml it mapped, and ``run_python`` fails unless it was the fake.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent.parent
SOURCES = ("fake_nvml.c", "fixture.c", "stubs.c", "fake_nvml.h", "fake_state.h")
BUILD_ROOT = ROOT / "tests" / "fakes" / "build" / "nvml"
FIXTURE_VARIABLE = "DS01_FAKE_NVML_FIXTURE"
SONAME = "libnvidia-ml.so.1"

# Appended to every child snippet: which libnvidia-ml files this process mapped, and
# whether the one answering is the fake (a symbol only the fake exports).
_LOADED_PROBE = """
def _ds01_loaded_report():
    import ctypes, json
    maps = sorted({line.split()[-1] for line in open("/proc/self/maps")
                   if "libnvidia-ml" in line})
    fake = None
    if maps:
        try:
            fn = ctypes.CDLL("libnvidia-ml.so.1").ds01FakeNvmlVersion
            fn.restype = ctypes.c_char_p
            fake = fn().decode()
        except (OSError, AttributeError):
            fake = None
    print("DS01-NVML-LOADED " + json.dumps({"maps": maps, "fake": fake}), flush=True)
import atexit as _ds01_atexit
_ds01_atexit.register(_ds01_loaded_report)
"""


def build_library() -> Path:
    """Compile the fake (once per source version); return the directory holding it."""
    digest = hashlib.sha256()
    for name in SOURCES:
        digest.update((HERE / name).read_bytes())
    out = BUILD_ROOT / digest.hexdigest()[:16]
    library = out / SONAME
    if library.exists():
        return out
    out.mkdir(parents=True, exist_ok=True)
    # Built aside and renamed: parallel test workers and a bench may build at once.
    partial = out / f".{SONAME}.{os.getpid()}"
    subprocess.run(
        [
            "gcc",
            "-O2",
            "-Wall",
            "-Wextra",
            "-Werror",
            "-shared",
            "-fPIC",
            f"-Wl,-soname,{SONAME}",
            "-o",
            str(partial),
            *(str(HERE / name) for name in SOURCES if name.endswith(".c")),
            "-lpthread",
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    partial.replace(library)
    return out


class ChildResult:
    """A finished child: its output (without the probe line) and what it loaded."""

    def __init__(self, returncode: int, stdout: str, stderr: str) -> None:
        self.returncode = returncode
        self.stderr = stderr
        lines = stdout.splitlines()
        self.loaded: dict[str, object] | None = None
        kept = []
        for line in lines:
            if line.startswith("DS01-NVML-LOADED "):
                self.loaded = json.loads(line.removeprefix("DS01-NVML-LOADED "))
            else:
                kept.append(line)
        self.stdout = "\n".join(kept)

    def json(self) -> object:
        """The child's last output line, decoded."""
        return json.loads(self.stdout.splitlines()[-1])


class FakeNvml:
    """One fixture file in ``directory`` and the environment that loads the fake on it."""

    def __init__(self, directory: Path) -> None:
        self.library_dir = build_library()
        self.fixture = directory / "nvml.fixture"
        self._sessions: list[Session] = []
        directory.mkdir(parents=True, exist_ok=True)

    def write(self, text: str) -> None:
        """Replace the fixture atomically (a new inode: the fake re-reads it)."""
        fd, tmp = tempfile.mkstemp(dir=self.fixture.parent, prefix=".fixture.")
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
        os.replace(tmp, self.fixture)

    def env(
        self, base: dict[str, str] | None = None, *, with_library: bool = True
    ) -> dict[str, str]:
        """An environment whose processes load the fake (or, without it, no NVML at all)."""
        env = dict(os.environ if base is None else base)
        env[FIXTURE_VARIABLE] = str(self.fixture)
        paths = [
            p for p in env.get("LD_LIBRARY_PATH", "").split(":") if p and "fakes/build" not in p
        ]
        if with_library:
            paths.insert(0, str(self.library_dir))
        env["LD_LIBRARY_PATH"] = ":".join(paths)
        env["PYTHONPATH"] = os.pathsep.join(
            [str(ROOT / "lib"), str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]
        )
        return env

    def run_python(
        self, code: str, *, timeout: float = 60, with_library: bool = True, check_fake: bool = True
    ) -> ChildResult:
        """Run ``code`` in a child Python on this fixture; by default require the fake loaded."""
        proc = subprocess.run(
            [sys.executable, "-c", _LOADED_PROBE + "\n" + code],
            env=self.env(with_library=with_library),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        result = ChildResult(proc.returncode, proc.stdout, proc.stderr)
        if check_fake:
            assert_fake_loaded(result, self.library_dir)
        return result

    def start_python(self, code: str) -> subprocess.Popen[str]:
        """Start ``code`` in a child on this fixture; ``finish`` collects and checks it."""
        return subprocess.Popen(
            [sys.executable, "-c", _LOADED_PROBE + "\n" + code],
            env=self.env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def finish(self, proc: subprocess.Popen[str], *, timeout: float = 30) -> ChildResult:
        """Wait for a ``start_python`` child; fail unless it loaded the fake."""
        stdout, stderr = proc.communicate(timeout=timeout)
        result = ChildResult(proc.returncode, stdout, stderr)
        assert_fake_loaded(result, self.library_dir)
        return result

    def session(self, *, timeout: float = 5.0, with_library: bool = True) -> Session:
        """A long-running child (tests/fakes/nvml/session.py) on this fixture; see close()."""
        session = Session(self, timeout, with_library=with_library)
        self._sessions.append(session)
        return session

    def close(self) -> None:
        """End every session this fake started."""
        for session in self._sessions:
            session.close()
        self._sessions.clear()


class Session:
    """One child process that keeps NVML initialised across commands (see session.py)."""

    def __init__(self, fake: FakeNvml, timeout: float, *, with_library: bool) -> None:
        self.fake = fake
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.fakes.nvml.session", str(timeout)],
            cwd=ROOT,
            env=fake.env(with_library=with_library),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def ask(self, command: str) -> Any:
        """Send one command; its JSON answer."""
        assert self.proc.stdin is not None
        assert self.proc.stdout is not None
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            _, err = self.proc.communicate(timeout=10)
            raise AssertionError(f"session ended: {err}")
        return json.loads(line)

    def check_fake_loaded(self) -> None:
        """Fail unless this child mapped only the fake library and it answers as the fake."""
        loaded = self.ask("loaded")
        assert loaded["maps"], "no libnvidia-ml was loaded"
        assert all(str(p).startswith(str(self.fake.library_dir)) for p in loaded["maps"]), loaded
        assert loaded["fake"] == "ds01-fake-nvml 1", loaded

    def close(self) -> None:
        """End the child (kill: a stuck poll thread must not keep it alive)."""
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.communicate(timeout=10)


def assert_fake_loaded(result: ChildResult, library_dir: Path) -> None:
    """Fail unless the child mapped only the fake libnvidia-ml and it answered as the fake."""
    loaded = result.loaded
    assert loaded is not None, f"child ended before reporting its libraries:\n{result.stderr}"
    maps = loaded["maps"]
    assert isinstance(maps, list)
    assert maps, f"no libnvidia-ml was loaded:\n{result.stderr}"
    assert all(str(path).startswith(str(library_dir)) for path in maps), maps
    assert loaded["fake"] == "ds01-fake-nvml 1", loaded


def real_driver_installed() -> bool:
    """Whether this machine has a real libnvidia-ml (then "library missing" cannot be shown)."""
    try:
        listing = subprocess.run(
            ["ldconfig", "-p"], capture_output=True, text=True, check=False
        ).stdout
    except OSError:
        return False
    return SONAME in listing


def mig_layout(gpus: int, migs_per_gpu: int, pids: list[int], *, parent: str = "denied") -> str:
    """A fixture: ``gpus`` A100s in MIG mode, ``migs_per_gpu`` 1g.10gb devices each.

    One process per pid, spread round-robin over all MIG devices (the i-th uses i+1 MiB).
    """
    lines = ["driver 550.54.15"]
    for gpu in range(gpus):
        lines.append(
            f"gpu {gpu} uuid=GPU-{gpu:08x}-1111-4000-8000-000000000000 "
            f'name="NVIDIA A100-SXM4-80GB" memory=81920 mig=on parent={parent}'
        )
        lines.extend(
            f"mig {gpu} {slot} gi={7 + slot} ci=0 uuid=MIG-{gpu:08x}-2222-4000-8000-{slot:012x}"
            " profile=1g.10gb memory=9856"
            for slot in range(migs_per_gpu)
        )
    devices = [(gpu, slot) for gpu in range(gpus) for slot in range(migs_per_gpu)]
    for i, pid in enumerate(pids):
        gpu, slot = devices[i % len(devices)]
        lines.append(f"proc {gpu}/{slot} pid={pid} memory={i + 1}")
    return "\n".join(lines) + "\n"
