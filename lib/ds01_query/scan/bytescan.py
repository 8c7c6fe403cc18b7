"""Finding a byte string in a large buffer of lines, at the speed of the C library.

``bytes.find`` scans the log at about 1 GB/s for a needle like ``"alice"``; glibc's
``memmem`` (two-way, vectorised) is two to three times as fast, which is most of a full
``--user`` scan. It is reached through ctypes, loaded only for buffers big enough to
repay the import; without it (another C library, no ctypes) ``buffer.find`` is used.
Both return the same offsets. A buffer is a ``bytes`` block or a read-only ``mmap`` of
the log; its address comes from the buffer protocol, held until `Searcher.close`.
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


def _hold_address(buffer: Buffer) -> tuple[int, Callable[[], None] | None]:
    """Return the buffer's address, and the function that lets it go (None: nothing to do).

    A ``bytes`` object's address is its own (``c_char_p``, kept by the caller's closure);
    other buffers are held through ``PyObject_GetBuffer``.
    """
    import ctypes  # noqa: PLC0415 - already imported by _load_memmem

    if isinstance(buffer, bytes):
        return ctypes.cast(ctypes.c_char_p(buffer), ctypes.c_void_p).value or 0, None

    class PyBuffer(ctypes.Structure):
        """``Py_buffer`` from the C API (unchanged since Python 3.3)."""

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

    # Own function pointers (indexing makes new ones): pythonapi's shared attributes
    # would carry this call's argtypes into every other holder and user.
    api = ctypes.pythonapi
    view = PyBuffer()
    get, release = api["PyObject_GetBuffer"], api["PyBuffer_Release"]
    get.argtypes = [ctypes.py_object, ctypes.POINTER(PyBuffer), ctypes.c_int]
    release.argtypes = [ctypes.POINTER(PyBuffer)]
    release.restype = None
    if get(buffer, ctypes.byref(view), 0) != 0:  # 0: PyBUF_SIMPLE, read-only is fine
        msg = "buffer refused"
        raise BufferError(msg)
    released: list[bool] = []

    def let_go() -> None:
        if not released:  # once only: a second release would corrupt the export count
            released.append(True)
            release(ctypes.byref(view))

    return view.buf or 0, let_go


class Searcher:
    """``find(needle, start, stop)`` over one buffer, like ``buffer.find``; then `close`.

    ``memmem`` is used for buffers of at least ``worth_loading`` bytes. The buffer must
    not change while the searcher is open; an mmap cannot be closed until then.
    """

    __slots__ = ("_let_go", "find")

    def __init__(self, buffer: Buffer, worth_loading: int = WORTH_LOADING) -> None:
        """Search ``buffer``, in C when it is big enough to be worth it."""
        self.find: Finder = buffer.find
        self._let_go: Callable[[], None] | None = None
        memmem = _load_memmem() if len(buffer) >= worth_loading else None
        if memmem is None:
            return
        try:
            base, self._let_go = _hold_address(buffer)
        except (AttributeError, BufferError):  # no pythonapi (not CPython)
            return
        size = len(buffer)

        def find(needle: bytes, start: int, stop: int) -> int:
            if not needle or start < 0 or stop > size or start >= stop:
                return buffer.find(needle, start, stop)
            found = memmem(base + start, stop - start, needle, len(needle))
            return -1 if found is None else found - base

        self.find = find  # keeps ``buffer`` alive, so a bytes block's address stays valid

    def close(self) -> None:
        """Let the buffer go (an mmap can be closed after this)."""
        if self._let_go is not None:
            self._let_go()
            self._let_go = None

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


def finder(block: bytes, worth_loading: int = WORTH_LOADING) -> Finder:
    """Return ``find(needle, start, stop)`` over a ``bytes`` block, like ``block.find``.

    The block's address is held as long as the returned function lives (bytes never move).
    """
    return Searcher(block, worth_loading).find
