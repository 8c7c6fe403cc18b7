#!/usr/bin/env python3
"""Time two commands in turn, run by run, and print the median of the ratios of each pair.

    python bench/pairs.py -n 40 -- 'CMD A ...' 'CMD B ...'

Each string is split as a shell splits words and run without a shell, its output
thrown away. A and B take turns (A B A B ...), so that a machine whose speed drifts
slows both sides of a pair alike; the figure to quote is the median of the per-pair
ratios A/B, of CPU time (user + system of the finished child, from ``wait4``) and of
wall time. Short commands (about 10 ms) need 40 pairs or more for a steady median.
"""

from __future__ import annotations

import argparse
import os
import shlex
import statistics
import subprocess
import sys
import time


def run_once(argv: list[str]) -> tuple[float, float]:
    """Run ``argv`` once: (wall seconds, CPU seconds of the child)."""
    start = time.perf_counter()
    child = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - start
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode != 0:
        sys.exit(f"pairs: {shlex.join(argv)} exited {child.returncode}; fix the command first")
    return wall, usage.ru_utime + usage.ru_stime


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=40, help="pairs (default 40)")
    parser.add_argument("a", help="command A (quoted)")
    parser.add_argument("b", help="command B, the baseline (quoted)")
    args = parser.parse_args()
    a, b = shlex.split(args.a), shlex.split(args.b)
    run_once(a), run_once(b)  # warm the page cache and the bytecode
    walls: list[float] = []
    cpus: list[float] = []
    times: dict[str, list[float]] = {"A": [], "B": []}
    for _ in range(args.n):
        wall_a, cpu_a = run_once(a)
        wall_b, cpu_b = run_once(b)
        times["A"].append(wall_a)
        times["B"].append(wall_b)
        walls.append(wall_a / wall_b)
        if cpu_b > 0:
            cpus.append(cpu_a / cpu_b)
    for side, values in times.items():
        print(f"{side} wall s: median {statistics.median(values):.4f}, min {min(values):.4f}")
    print(f"A/B wall: median {statistics.median(walls):.3f} ({min(walls):.2f}-{max(walls):.2f})")
    if cpus:
        print(f"A/B cpu:  median {statistics.median(cpus):.3f} ({min(cpus):.2f}-{max(cpus):.2f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
