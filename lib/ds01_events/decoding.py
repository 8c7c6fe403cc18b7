r"""Lines to events: the stdlib decoder for the first lines a query reads, msgspec after.

A bisected ``--since`` query or the default view decodes a few hundred lines, and
loading msgspec would cost more than decoding them; a full scan decodes many more and
msgspec is several times faster per line. Both give the same answer on every line:
the stdlib decoder is made as strict as msgspec (no ``NaN``/``Infinity``, no number
beyond float range), and a line that may hold a surrogate escape (``\ud800``: the
stdlib accepts a lone one, msgspec does not) always goes to msgspec. In both the
last duplicate key wins, as in jq.
"""

from __future__ import annotations

import json

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

    from ds01_events.query import Obj

CHEAP_LINES = 2000  # beyond this many lines, loading msgspec pays for itself
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


_stdlib_decode = json.JSONDecoder(parse_constant=_no_constant, parse_float=_finite).decode


def _load_msgspec() -> Callable[[bytes], object]:
    import msgspec  # noqa: PLC0415 - costs more to import than a short query takes

    decode = msgspec.json.Decoder().decode

    def strict(line: bytes) -> object:
        try:
            return decode(line)
        except (msgspec.DecodeError, UnicodeDecodeError):
            return None

    return strict


def _may_hold_surrogate(line: bytes) -> bool:
    return b"\\u" in line and (b"\\ud" in line or b"\\uD" in line)


class EventDecoder:
    """Decode lines to event objects; None for a line that is not a JSON object. Never raises."""

    def __init__(self, cheap_lines: int = CHEAP_LINES) -> None:
        """Use the stdlib decoder for the first ``cheap_lines`` lines."""
        self._cheap_left = cheap_lines
        self._msgspec: Callable[[bytes], object] | None = None

    def __call__(self, line: bytes) -> Obj | None:
        """Return the object ``line`` holds, or None."""
        if self._msgspec is None and self._cheap_left > 0 and not _may_hold_surrogate(line):
            self._cheap_left -= 1
            try:
                value: object = _stdlib_decode(line.decode("utf-8"))
            except ValueError:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
                return None
            except RecursionError:
                value = self._full()(line)
        else:
            value = self._full()(line)
        return value if isinstance(value, dict) else None

    def _full(self) -> Callable[[bytes], object]:
        if self._msgspec is None:
            self._msgspec = _load_msgspec()
        return self._msgspec
