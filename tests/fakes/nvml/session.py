"""A long-running child on the fake NVML: one command per stdin line, one JSON line back.

Commands: ``read`` (an NvmlReader snapshot), ``poll`` (an NvmlPoller result),
``threads`` (how many poll threads are alive), ``loaded`` (which libnvidia-ml files
are mapped, and whether the fake answers). Run by ``FakeNvml.session``.
"""

from __future__ import annotations

import ctypes
import json
import sys
import threading

import msgspec

from detectors.nvml import NvmlReader
from detectors.poller import NvmlPoller


def loaded() -> dict[str, object]:
    """The libnvidia-ml files this process mapped, and the fake's version if it is one."""
    with open("/proc/self/maps", encoding="utf-8") as maps_file:
        maps = sorted({line.split()[-1] for line in maps_file if "libnvidia-ml" in line})
    fake = None
    if maps:
        try:
            fn = ctypes.CDLL("libnvidia-ml.so.1").ds01FakeNvmlVersion
            fn.restype = ctypes.c_char_p
            fake = fn().decode()
        except (OSError, AttributeError):
            fake = None
    return {"maps": maps, "fake": fake}


def main() -> None:
    """Answer commands until stdin closes."""
    timeout = float(sys.argv[1]) if len(sys.argv) > 1 else 5.0
    reader = NvmlReader()
    poller = NvmlPoller(timeout, backoff_s=0.0, reader=reader)
    for line in sys.stdin:
        command = line.strip()
        if command == "read":
            answer: object = msgspec.to_builtins(reader.read())
        elif command == "poll":
            answer = msgspec.to_builtins(poller.poll())
        elif command == "threads":
            answer = sum(1 for t in threading.enumerate() if t.name == "nvml-poll")
        elif command == "loaded":
            answer = loaded()
        else:
            answer = {"unknown command": command}
        print(json.dumps(answer), flush=True)


if __name__ == "__main__":
    main()
