r"""Lines to events: the stdlib decoder for the first lines a query reads, msgspec after.

A bisected ``--since`` query or the default view decodes a few hundred lines, and
loading msgspec would cost more than decoding them; a full scan decodes many more and
msgspec is several times faster per line. Both give the same answer on every line:
the stdlib decoder is made as strict as msgspec (no ``NaN``/``Infinity``, no number
beyond float range), and a line that may hold a surrogate escape (``\ud800``: the
stdlib accepts a lone one, msgspec does not) always goes to msgspec. In both the
last duplicate key wins, as in jq.

The stdlib decoder is the C scanner behind `json` (``_json.make_scanner``), driven the
way ``json.JSONDecoder.decode`` drives it: importing `json` itself pulls in `re`, which
costs more than a bisected query takes.

Whatever a line holds, decoding it never raises: a line longer than `MAX_LINE_BYTES`
or nested deeper than `MAX_NESTING` is refused before either decoder sees it (both
recurse per level, and a line nested ~1,000 deep raised RecursionError out of them),
and any other error of a decoder counts as "not an event".
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

    from ds01_query.engine.query import Obj

# Per line, the stdlib decoder takes ~2.8 us and msgspec ~1.6 us, but importing msgspec
# takes ~40 ms: it pays for itself after ~30,000 lines. Switching there costs a scan at
# most twice the best choice made in hindsight, whatever its length.
CHEAP_LINES = 30_000
# A scan that can tell it will decode more lines than that (a full scan, from the
# candidates of its first window) loads msgspec at once: the best choice in hindsight.
WORTH_MSGSPEC = CHEAP_LINES
# An event is a few levels deep (details, a list of GPU devices): far below the
# ~1,000 at which the decoders give up with RecursionError.
MAX_NESTING = 64
# The watcher writes lines of at most 4 KiB; a reader skips anything past this bound
# without holding it (`reader`), and the decoders refuse it.
MAX_LINE_BYTES = 64 << 10
# Every byte but these is dropped before the nesting of a suspect line is counted.
_STRUCTURE = b'{}[]"\\'
_OPEN, _CLOSE, _QUOTE, _BACKSLASH = frozenset(b"{["), frozenset(b"}]"), ord('"'), ord("\\")
_INFINITE = (float("inf"), float("-inf"))


def _no_constant(name: str) -> None:
    msg = f"{name} is not JSON"
    raise ValueError(msg)


def _finite(text: str) -> float:
    value = float(text)
    if value in _INFINITE:
        msg = f"{text} is out of range"
        raise ValueError(msg)
    return value


_JSON_SPACE = " \t\n\r"  # the only whitespace JSON allows between tokens


class _ScannerSettings:
    """What the C scanner reads from a ``json.JSONDecoder``: these are its strict defaults."""

    strict = True
    object_hook = None
    object_pairs_hook = None  # None: a plain dict, the last duplicate key wins
    parse_int = int
    parse_float = staticmethod(_finite)
    parse_constant = staticmethod(_no_constant)


def _make_stdlib_decode() -> Callable[[str], object]:
    try:
        from _json import make_scanner  # noqa: PLC0415 - CPython's C half of json
    except ImportError:  # another Python: json itself, re and all
        import json  # noqa: PLC0415

        return json.JSONDecoder(parse_constant=_no_constant, parse_float=_finite).decode
    # The stub types the context as a scanner; the C code only reads the attributes above.
    scan = make_scanner(_ScannerSettings())  # type: ignore[arg-type]

    def decode(text: str) -> object:
        """Decode one document, exactly as ``json.JSONDecoder.decode`` does."""
        start = len(text) - len(text.lstrip(_JSON_SPACE))
        try:
            value, end = scan(text, start)
        except StopIteration:  # no JSON value starts there
            msg = "expecting a value"
            raise ValueError(msg) from None
        except SystemError:
            # Python <= 3.11: the scanner raises json.decoder.JSONDecodeError only once
            # json.decoder is loaded, and fails like this before. Load it; the same call
            # then raises the ValueError (the scanner keeps no state between calls).
            import json.decoder  # noqa: PLC0415, F401 - loaded for the scanner's error path

            value, end = scan(text, start)
        if end != len(text) and text[end:].strip(_JSON_SPACE):
            msg = "extra data after the value"
            raise ValueError(msg)
        return value

    return decode


stdlib_decode = _make_stdlib_decode()


def _load_msgspec() -> Callable[[bytes], object]:
    import msgspec  # noqa: PLC0415 - costs more to import than a short query takes

    return msgspec.json.Decoder().decode


def nesting_exceeds(line: bytes, limit: int = MAX_NESTING) -> bool:
    """Tell whether ``line`` opens more than ``limit`` arrays or objects inside each other.

    Brackets inside strings do not count. Costs two C-level counts for a line with
    few brackets (every event); only a line with more than ``limit`` of them is walked.
    """
    if line.count(b"{") + line.count(b"[") <= limit:
        return False
    other = bytes(c for c in range(256) if c not in _STRUCTURE)  # rare: built when needed
    return _deeper_than(line.translate(None, other), limit)


def _deeper_than(structure: bytes, limit: int) -> bool:
    """Walk the brackets, quotes and backslashes of a line, strings skipped."""
    depth = 0
    in_string = escaped = False
    for byte in structure:
        if in_string:
            if escaped:
                escaped = False
            elif byte == _BACKSLASH:
                escaped = True
            elif byte == _QUOTE:
                in_string = False
        elif byte == _QUOTE:
            in_string = True
        elif byte in _OPEN:
            depth += 1
            if depth > limit:
                return True
        elif byte in _CLOSE:
            depth -= 1
    return False


def refused(line: bytes) -> bool:
    """Tell whether a line is too long or too deep to be handed to a decoder."""
    return len(line) > MAX_LINE_BYTES or nesting_exceeds(line)


def _may_hold_surrogate(line: bytes) -> bool:
    return b"\\u" in line and (b"\\ud" in line or b"\\uD" in line)


def _full_decoder(full: Callable[[bytes], object]) -> Callable[[bytes], Obj | None]:
    """Decode with msgspec, with the bounds checked inline: this runs once per candidate."""
    longest, deepest, count = MAX_LINE_BYTES, MAX_NESTING, bytes.count

    def decode(line: bytes) -> Obj | None:
        if len(line) > longest or (
            count(line, b"{") + count(line, b"[") > deepest and nesting_exceeds(line)
        ):
            return None
        try:
            value = full(line)
        except Exception:  # whatever a line makes a decoder raise: not an event
            return None
        return value if type(value) is dict else None

    return decode


class EventDecoder:
    """Decode lines to event objects; None for a line that is not a JSON object. Never raises.

    ``decode`` is the function to call in a loop: it is replaced by a leaner one once
    the decoder has switched to msgspec.
    """

    def __init__(self, cheap_lines: int = CHEAP_LINES) -> None:
        """Use the stdlib decoder for the first ``cheap_lines`` lines."""
        self._cheap_left = cheap_lines
        self.decode: Callable[[bytes], Obj | None] = self._first_lines

    def __call__(self, line: bytes) -> Obj | None:
        """Return the object ``line`` holds, or None."""
        return self.decode(line)

    def expect(self, lines: int) -> None:
        """Hear how many lines are about to be decoded: past `WORTH_MSGSPEC`, load it now."""
        if lines > WORTH_MSGSPEC and self._cheap_left > 0:
            self._cheap_left = 0
            self.decode = _full_decoder(_load_msgspec())

    def _first_lines(self, line: bytes) -> Obj | None:
        # `refused`, inline: this runs once per line of a short query
        if len(line) > MAX_LINE_BYTES or (
            line.count(b"{") + line.count(b"[") > MAX_NESTING and nesting_exceeds(line)
        ):
            return None
        if self._cheap_left <= 0 or _may_hold_surrogate(line):
            self.decode = _full_decoder(_load_msgspec())
            return self.decode(line)
        self._cheap_left -= 1
        try:
            value = stdlib_decode(line.decode("utf-8"))
        except Exception:  # whatever a line makes a decoder raise: not an event
            return None
        return value if isinstance(value, dict) else None
