"""`Record`: the one plain value class behind `QueryRequest` and `Filters`.

dataclasses imports inspect and re, which cost more than a bisected query takes; a
subclass names its fields and defaults once in ``FIELDS`` and gets keyword-only
construction, equality and a repr from here.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import ClassVar


class Record:
    """Keyword-only fields with defaults (``FIELDS``); compared and shown field by field."""

    __slots__ = ()
    FIELDS: ClassVar[dict[str, object]] = {}

    def __init__(self, **given: object) -> None:
        """Set every field: the given value, else its default. Unknown names: TypeError."""
        unknown = [name for name in given if name not in self.FIELDS]
        if unknown:
            msg = f"{type(self).__name__} has no field {unknown[0]!r}"
            raise TypeError(msg)
        for name, default in self.FIELDS.items():
            setattr(self, name, given.get(name, default))

    def __eq__(self, other: object) -> bool:
        """Equal when of the same class and every field is equal."""
        if type(other) is not type(self):
            return NotImplemented
        return all(getattr(self, n) == getattr(other, n) for n in self.FIELDS)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        """Show every field, for test failures."""
        fields = ", ".join(f"{n}={getattr(self, n)!r}" for n in self.FIELDS)
        return f"{type(self).__name__}({fields})"
