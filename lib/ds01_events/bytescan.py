"""Finding a byte string in a large block of lines, at the speed of the C library.

``bytes.find`` scans the log at about 1 GB/s for a needle like ``"alice"``; glibc's
``memmem`` (two-way, vectorised) is about twice as fast, which is most of a full
``--user`` scan. It is reached through ctypes, loaded only for blocks big enough to
repay the import; without it (another C library, no ctypes) ``bytes.find`` is used.
Both return the same offsets.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

    Finder = Callable[[bytes, int, int], int]

WORTH_LOADING = 1 << 20  # smaller blocks: bytes.find, ctypes costs more to import
_memmem: list[Callable[[int, int, bytes, int], int | None] | None] = []


def _load_memmem() -> Callable[[int, int, bytes, int], int | None] | None:
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


def finder(block: bytes, worth_loading: int = WORTH_LOADING) -> Finder:
    """Return ``find(needle, start, stop)`` over ``block``, like ``block.find``.

    ``memmem`` is used for blocks of at least ``worth_loading`` bytes.
    The block must stay alive and unchanged while the returned function is used
    (a ``bytes`` object, which the function itself keeps referenced).
    """
    memmem = _load_memmem() if len(block) >= worth_loading else None
    if memmem is None:
        return block.find
    import ctypes  # noqa: PLC0415 - already imported by _load_memmem

    pointer = ctypes.c_char_p(block)
    base = ctypes.cast(pointer, ctypes.c_void_p).value or 0

    def find(needle: bytes, start: int, stop: int) -> int:
        if not needle or start < 0 or stop > len(block) or start >= stop:
            return block.find(needle, start, stop)
        found = memmem(base + start, stop - start, needle, len(needle))
        _ = pointer  # keeps the block's buffer referenced as long as this function
        return -1 if found is None else found - base

    return find
