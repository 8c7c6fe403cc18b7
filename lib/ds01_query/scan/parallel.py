"""A large scan read by several processes at once, its matches passed on in file order.

A full scan (``--user``, ``--container``, ``--grep`` over months of events) costs the
needle search over every byte and the decoding of every candidate; both grow with the
bytes read, and each core can take a share. The shares are contiguous and cut at line
starts (`plan_shares`). The parent reads the first share itself and passes its matches
on at once; each worker, forked, reads one later share and writes its matching lines to
a pipe, which the parent reads in turn once everything before it is passed on.

The answer is the one a single process gives, line for line, with the same counts:

- no line is read twice or missed: shares meet at line starts;
- after each block a worker reports where its share goes on (segment, offset) and the
  lines it skipped as malformed; the parent passes on a worker's lines only up to its
  last report, so a worker that dies part way (killed, out of memory) costs nothing
  but time: the parent reads the rest of that share itself, from there;
- memory stays bounded: a worker waits while its pipe is full;
- the parent kills and reaps its workers when it stops early (``| head``, Ctrl-C).
"""

from __future__ import annotations

import os

from ds01_query.engine import reader
from ds01_query.engine.query import needles
from ds01_query.scan.search import (
    SHARE_BYTES,
    Match,
    ScanStats,
    Segment,
    matching,
    scan,
    segment_batches,
    segment_weight,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Sequence

    from ds01_query.engine.query import Filters

    # Reads one share and writes its report to the file descriptor (see `read_share`).
    ShareReader = Callable[[Sequence[Segment], "Sequence[bytes] | None", Filters, int], None]

PIPE_BYTES = 1 << 20  # what a worker may get ahead by (Linux's limit without root)
_DONE = b"\0done"


def plan_shares(
    segments: Sequence[Segment], workers: int, share_bytes: int = SHARE_BYTES
) -> list[list[Segment]]:
    """Split ``segments`` into at most ``workers`` contiguous shares of about equal weight.

    There are no more shares than ``share_bytes`` fits into the total (one share: not
    worth a process). A cut falls at the first line start past an even split, so every
    share but the last weighs at least ``share_bytes``; the last holds what is left.
    Plain ranges are cut at line starts; a compressed file is never cut.
    """
    weights = [segment_weight(s) for s in segments]
    count = min(workers, sum(weights) // max(share_bytes, 1))
    if count <= 1:
        return [list(segments)]
    target = sum(weights) / count
    shares: list[list[Segment]] = [[]]
    filled = 0
    for whole, whole_weight in zip(segments, weights, strict=True):
        segment, weight = whole, whole_weight
        while len(shares) < count and filled + weight > target:
            piece, rest = _cut(segment, max(int(target - filled), 1))
            if piece is None:
                break
            shares[-1].append(piece)
            shares.append([])
            filled = 0
            segment, weight = rest, segment_weight(rest)
        shares[-1].append(segment)
        filled += weight
        if filled >= target and len(shares) < count:
            shares.append([])
            filled = 0
    return [share for share in shares if share]


def _cut(segment: Segment, length: int) -> tuple[Segment | None, Segment]:
    """Cut ``segment`` at the first line start ``length`` bytes in: (first, rest); None: no cut."""
    if reader.is_compressed(segment.path):
        return None, segment
    cut = reader.next_line_start(segment.path, segment.start + length)
    end = os.path.getsize(segment.path) if segment.end is None else segment.end
    if not segment.start < cut < end:
        return None, segment
    return Segment(segment.path, segment.start, cut), Segment(segment.path, cut, segment.end)


def iter_matches(
    segments: Sequence[Segment],
    filters: Filters,
    stats: ScanStats,
    *,
    workers: int,
    share_bytes: int = SHARE_BYTES,
    read: ShareReader | None = None,
) -> Iterator[Match]:
    """The matches of ``segments`` in order, read by up to ``workers`` processes.

    ``read`` is what a worker runs (default `read_share`); tests pass one that fails.
    """
    wanted = needles(filters)
    first, *later = plan_shares(segments, workers, share_bytes)
    started: list[_Worker | list[Segment]] = []
    try:
        for share in later:
            # One by one, not extend(): a worker counts as started, for the finally
            # below, as soon as it runs.
            started.append(_Worker.start(share, wanted, filters, read or read_share) or share)  # noqa: PERF401
        yield from scan(first, wanted, filters, stats)
        for worker in started:
            if isinstance(worker, _Worker):
                yield from worker.collect(wanted, filters, stats)
            else:  # no process could be started for it
                yield from scan(worker, wanted, filters, stats)
    finally:
        for worker in started:
            if isinstance(worker, _Worker):
                worker.stop()


def read_share(
    share: Sequence[Segment], wanted: Sequence[bytes] | None, filters: Filters, fd: int
) -> None:
    r"""Write the matching lines of ``share`` to ``fd``, with a report after each block.

    A report is ``\0SEGMENT OFFSET MALFORMED``: the share goes on in segment SEGMENT at
    OFFSET (``-``: that segment is done), and MALFORMED lines were skipped in it since
    the last report. A matching line decodes as JSON, so it never starts with ``\0``.
    The last line is ``\0done``.
    """
    stats = ScanStats()
    with open(fd, "wb", buffering=PIPE_BYTES) as out:
        for index, segment in enumerate(share):
            skipped = 0
            for offset, batch in segment_batches(segment, wanted):
                before = stats.malformed
                found = matching(batch, filters, stats, segment.path)
                out.writelines(match.line + b"\n" for match in found)
                skipped += stats.malformed - before
                if offset is not None:  # a compressed file is reported once, when done
                    out.write(b"\0%d %d %d\n" % (index, offset, skipped))
                    skipped = 0
            out.write(b"\0%d - %d\n" % (index, skipped))
        out.write(_DONE + b"\n")


class _Worker:
    """One forked process reading one share, and the pipe its report comes back on."""

    __slots__ = ("fd", "pid", "share")

    def __init__(self, pid: int, fd: int, share: Sequence[Segment]) -> None:
        self.pid = pid
        self.fd = fd
        self.share = share

    @classmethod
    def start(
        cls,
        share: Sequence[Segment],
        wanted: Sequence[bytes] | None,
        filters: Filters,
        read: ShareReader,
    ) -> _Worker | None:
        """Fork a worker reading ``share``; None when the system cannot start one now."""
        fd, write_fd = os.pipe()
        _widen(write_fd)
        try:
            pid = os.fork()
        except OSError:  # out of processes or memory: the parent reads the share itself
            os.close(fd)
            os.close(write_fd)
            return None
        if pid == 0:  # the worker: never returns, never runs the parent's exit handlers
            status = 1
            try:
                os.close(fd)
                read(share, wanted, filters, write_fd)
                status = 0
            finally:
                os._exit(status)
        os.close(write_fd)
        return cls(pid, fd, share)

    def collect(
        self, wanted: Sequence[bytes] | None, filters: Filters, stats: ScanStats
    ) -> Iterator[Match]:
        """The worker's matches up to its last report; then the rest of its share, read here."""
        reported: list[bytes] = []
        pending: list[bytes] = []
        resume: tuple[int, int | None] = (0, None)
        carry = b""
        while chunk := os.read(self.fd, PIPE_BYTES):
            *lines, carry = (carry + chunk).split(b"\n")
            for line in lines:
                if not line.startswith(b"\0"):
                    pending.append(line)
                    continue
                if line == _DONE:
                    resume = (len(self.share), None)
                    continue
                at, offset, skipped = line[1:].split(b" ")
                if int(skipped):
                    stats.note_malformed(self.share[int(at)].path, int(skipped))
                resume = (int(at) + 1, None) if offset == b"-" else (int(at), int(offset))
                reported += pending
                pending = []
            yield from (Match(line) for line in reported)
            reported = []
        self.stop()
        index, start = resume
        rest = list(self.share[index:])
        if rest and start is not None:
            rest[0] = Segment(rest[0].path, start, rest[0].end)
        yield from scan(rest, wanted, filters, stats)

    def stop(self) -> None:
        """Kill the worker if it still runs, reap it, close its pipe (once)."""
        if self.pid <= 0:
            return
        import contextlib  # noqa: PLC0415 - only the parallel path needs them
        import signal  # noqa: PLC0415

        with contextlib.suppress(ProcessLookupError):  # already gone; still to be reaped
            os.kill(self.pid, signal.SIGKILL)
        os.waitpid(self.pid, 0)
        os.close(self.fd)
        self.pid = 0


def _widen(fd: int) -> None:
    """Let the pipe hold ``PIPE_BYTES``, so a worker with few matches never waits."""
    try:
        import fcntl  # noqa: PLC0415 - Unix only, and only here

        fcntl.fcntl(fd, fcntl.F_SETPIPE_SZ, PIPE_BYTES)
    except (ImportError, AttributeError, OSError):  # another OS, or over the system's limit
        pass
