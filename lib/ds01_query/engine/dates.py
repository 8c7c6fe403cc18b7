"""The datetime types, taken from CPython's C module when it is there.

``import datetime`` first runs the module's pure-Python implementation (and loads
``math`` and ``operator`` for it), then replaces every class with the C one from
``_datetime``: about 3 ms here, a sixth of a bisected ``--since`` query. The classes
are the same objects either way (``datetime.datetime is _datetime.datetime``), so
values mix freely with code that imports ``datetime`` itself.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from datetime import date, datetime, time, timedelta, timezone, tzinfo
else:
    try:
        from _datetime import date, datetime, time, timedelta, timezone, tzinfo
    except ImportError:  # not CPython: the public module is all there is
        from datetime import date, datetime, time, timedelta, timezone, tzinfo

__all__ = ["date", "datetime", "time", "timedelta", "timezone", "tzinfo"]
