"""Finding a byte string in a large buffer of lines, at the speed of the C library.

``bytes.find`` scans the log at about 1 GB/s for a needle like ``"alice"``; glibc's
``memmem`` (two-way, vectorised) is two to three times as fast, which is most of a full
``--user`` scan. It is reached through ctypes, loaded only for buffers big enough to
repay the import; without it (another C library, no ctypes) ``buffer.find`` is used.
Both return the same offsets. A buffer is a ``bytes`` block (its address: ctypes
passes a ``bytes`` as a pointer to its data) or a map of the log made ``ACCESS_COPY``
(private and never written), whose address ``ctypes.c_char.from_buffer`` gives: the
supported way, held until `Searcher.close`. ``bench/bytescan.py`` measured it beside
``mmap.find`` (about half as fast) and the hand-made ``Py_buffer`` this replaced (the
same speed).
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    import mmap
    from collections.abc import Callable
    from types import TracebackType

    from typing_extensions import Self

    Finder = Callable[[bytes, int, int], int]
    Buffer = bytes | mmap.mmap
    MemMem = Callable[[int, int, bytes, int], int | None]

WORTH_LOADING = 1 << 20  # smaller buffers: buffer.find, ctypes costs more to import
_memmem: list[MemMem | None] = []


def _load_memmem() -> MemMem | None:
    if not _memmem:
        try:
            import ctypes  # noqa: PLC0415 - only full scans of big files need it

            function = ctypes.CDLL(None).memmem
            function.restype = ctypes.c_void_p
            function.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_char_p, ctypes.c_size_t]
            _memmem.append(function)
        except (ImportError, OSError, AttributeError):
            _memmem.append(None)
    return _memmem[0]


def _hold_address(buffer: Buffer) -> tuple[int, object]:
    """Return the buffer's address and what keeps it valid (drop that to let the buffer go).

    Raises TypeError for a buffer ctypes cannot point into (a read-only map).
    """
    import ctypes  # noqa: PLC0415 - already imported by _load_memmem

    if isinstance(buffer, bytes):
        pointer = ctypes.c_char_p(buffer)
        return ctypes.cast(pointer, ctypes.c_void_p).value or 0, pointer
    held = ctypes.c_char.from_buffer(buffer)  # a writable (ACCESS_COPY) map only
    return ctypes.addressof(held), held


class Searcher:
    """``find(needle, start, stop)`` over one buffer, like ``buffer.find``; then `close`.

    ``memmem`` is used for buffers of at least ``worth_loading`` bytes. The buffer must
    not change while the searcher is open; an mmap cannot be closed until then.
    """

    __slots__ = ("_held", "find")

    def __init__(self, buffer: Buffer, worth_loading: int = WORTH_LOADING) -> None:
        """Search ``buffer``, in C when it is big enough to be worth it."""
        self.find: Finder = buffer.find
        self._held: object = None
        memmem = _load_memmem() if len(buffer) >= worth_loading else None
        if memmem is None:
            return
        try:
            base, self._held = _hold_address(buffer)
        except (TypeError, ValueError, BufferError):  # a read-only map: buffer.find
            return
        size = len(buffer)

        def find(needle: bytes, start: int, stop: int) -> int:
            if not needle or start < 0 or stop > size or start >= stop:
                return buffer.find(needle, start, stop)
            found = memmem(base + start, stop - start, needle, len(needle))
            return -1 if found is None else found - base

        self.find = find  # keeps ``buffer`` alive, so a bytes block's address stays valid

    def close(self) -> None:
        """Let the buffer go (an mmap can be closed after this); ``find`` must not be used after."""
        self._held = None
        self.find = _closed

    def __enter__(self) -> Self:
        """Use as a context: closed on the way out."""
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        """Close."""
        self.close()


def _closed(needle: bytes, start: int, stop: int) -> int:  # noqa: ARG001 - a Finder's shape
    msg = "this searcher is closed"
    raise ValueError(msg)


def finder(block: bytes, worth_loading: int = WORTH_LOADING) -> Finder:
    """Return ``find(needle, start, stop)`` over a ``bytes`` block, like ``block.find``.

    The block's address is held as long as the returned function lives (bytes never move).
    """
    return Searcher(block, worth_loading).find
