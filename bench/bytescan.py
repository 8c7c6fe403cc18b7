#!/usr/bin/env python3
"""Ways to find a needle in a mapped log, measured side by side in one run.

    bench/bytescan.py FILE [--needle '"alice"'] [--rounds 7]

Each round times every candidate once over the whole map, in turn, so that a busy
moment of a shared machine falls on all of them alike; the figures are the best and
the median over the rounds, and every candidate must find the same offsets.

- ``mmap.find``: the map's own method, no ctypes.
- ``memmem, address by from_buffer``: glibc's ``memmem`` through ctypes, the map's
  address taken with ``ctypes.c_char.from_buffer`` (the supported way; it needs a
  writable map, so the file is mapped ``ACCESS_COPY``: private, never written).
- ``memmem, address by PyObject_GetBuffer``: the same call, the address taken the
  way ``bytescan`` did before, through ``ctypes.pythonapi`` and a hand-made
  ``Py_buffer``.
"""

from __future__ import annotations

import argparse
import ctypes
import mmap
import statistics
import sys
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable

    Finder = Callable[[bytes, int, int], int]


def _memmem() -> Callable[[int, int, bytes, int], int | None]:
    function = ctypes.CDLL(None).memmem
    function.restype = ctypes.c_void_p
    function.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_char_p, ctypes.c_size_t]
    return function  # type: ignore[no-any-return]


def _over(base: int) -> Finder:
    memmem = _memmem()

    def find(needle: bytes, start: int, stop: int) -> int:
        found = memmem(base + start, stop - start, needle, len(needle))
        return -1 if found is None else found - base

    return find


class _PyBuffer(ctypes.Structure):
    _fields_ = (
        ("buf", ctypes.c_void_p),
        ("obj", ctypes.c_void_p),
        ("len", ctypes.c_ssize_t),
        ("itemsize", ctypes.c_ssize_t),
        ("readonly", ctypes.c_int),
        ("ndim", ctypes.c_int),
        ("format", ctypes.c_char_p),
        ("shape", ctypes.c_void_p),
        ("strides", ctypes.c_void_p),
        ("suboffsets", ctypes.c_void_p),
        ("internal", ctypes.c_void_p),
    )


def _pythonapi_address(mapped: mmap.mmap) -> tuple[int, Callable[[], None]]:
    api = ctypes.pythonapi
    view = _PyBuffer()
    get, release = api["PyObject_GetBuffer"], api["PyBuffer_Release"]
    get.argtypes = [ctypes.py_object, ctypes.POINTER(_PyBuffer), ctypes.c_int]
    release.argtypes = [ctypes.POINTER(_PyBuffer)]
    release.restype = None
    if get(mapped, ctypes.byref(view), 0) != 0:
        msg = "buffer refused"
        raise BufferError(msg)
    return view.buf or 0, lambda: release(ctypes.byref(view))


def _all_offsets(find: Finder, needle: bytes, size: int, line_end: Finder) -> list[int]:
    """Every hit, stepping past the line of each, as the scan does."""
    found = []
    position = find(needle, 0, size)
    while position >= 0:
        found.append(position)
        end = line_end(b"\n", position, size)
        if end < 0:
            break
        position = find(needle, end + 1, size)
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("file")
    parser.add_argument("--needle", default='"alice"')
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    needle = args.needle.encode()
    with open(args.file, "rb") as handle:
        shared = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)
        private = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_COPY)
    size = len(shared)
    held = ctypes.c_char.from_buffer(private)
    base, let_go = _pythonapi_address(shared)
    candidates: dict[str, Finder] = {
        "mmap.find": shared.find,
        "memmem, address by from_buffer": _over(ctypes.addressof(held)),
        "memmem, address by PyObject_GetBuffer": _over(base),
    }
    times: dict[str, list[float]] = {name: [] for name in candidates}
    answers: dict[str, list[int]] = {}
    for _ in range(args.rounds):
        for name, find in candidates.items():
            start = time.perf_counter()
            answers[name] = _all_offsets(find, needle, size, shared.find)
            times[name].append(time.perf_counter() - start)
    if len({tuple(a) for a in answers.values()}) != 1:
        print("the candidates found different offsets", file=sys.stderr)
        return 1
    hits = len(next(iter(answers.values())))
    print(f"{size / 1e6:.0f} MB, needle {args.needle}, {hits} hits, {args.rounds} rounds")
    print(f"{'candidate':40} {'best ms':>8} {'median ms':>10} {'range ms':>14}")
    for name, runs in times.items():
        low, high = min(runs) * 1e3, max(runs) * 1e3
        median = statistics.median(runs) * 1e3
        print(f"{name:40} {low:8.1f} {median:10.1f} {low:6.1f}-{high:<7.1f}")
    del held, candidates
    let_go()
    shared.close()
    private.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
