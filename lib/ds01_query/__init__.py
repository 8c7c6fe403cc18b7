"""ds01_query: the admins' query tool, ``ds01-events``, over the live and rotated logs.

Parts: ``engine`` (filters, time specs, files and rotation, each file's time order,
decoding, summary, follow, verify), ``scan`` (bytes to matching lines, one process)
and ``cli`` (the fast path, the Typer app, aliases, guided mode, help, rendering).
Nothing outside this package imports it.

Start-up rules, binding this package only. ``ds01-events`` starts a fresh interpreter
per call, and a bisected ``--since`` query takes about as long as the interpreter's own
start-up, so on the path of a plain query:

- no ``typing``, ``re``, ``json``, ``pathlib``, ``datetime`` (``_datetime`` is taken
  directly, see ``engine.dates``), msgspec or Typer at import time: modules here write
  ``TYPE_CHECKING = False`` instead of importing it from ``typing``, and import what a
  rarer mode needs inside the function that needs it;
- ``ds01_events`` (the library, which loads msgspec) only for ``types`` and ``verify``.

``tests/unit/test_query_reading.py`` checks the imports of a bisected query in a fresh
process. The library, the watcher and the detectors do not follow these rules.
"""
