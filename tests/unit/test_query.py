"""Pure query filters, and the byte needles that must never drop a matching line."""

from __future__ import annotations

import json
from datetime import datetime, timezone

from hypothesis import given
from hypothesis import strategies as st

from ds01_query.engine.query import Filters, matches, needles
from ds01_query.scan.search import candidate_lines

NEW = {
    "timestamp": "2026-11-22T02:54:43.774116Z",
    "event_type": "gpu.allocate",
    "user": "alice",
    "details": {"container": "job._.1001", "container_id": "abcdef0123"},
}
LEGACY = {"ts": "2026-11-22T02:54:43Z", "event": "auth.denied", "user": "bob", "container": "old"}


def test_type_prefix_and_glob() -> None:
    """--type is a prefix, or a glob when it holds *; repeats are ORed."""
    assert matches(NEW, Filters(types=("gpu",)))
    assert not matches(NEW, Filters(types=("gpu.release",)))
    assert matches(LEGACY, Filters(types=("*.denied",)))
    assert matches(LEGACY, Filters(types=("gpu", "auth")))


def test_container_forms() -> None:
    """--container matches details.container, the legacy container, or a container_id prefix."""
    assert matches(NEW, Filters(containers=("job._.1001",)))
    assert matches(NEW, Filters(containers=("abcdef",)))
    assert not matches(NEW, Filters(containers=("job",)))
    assert matches(LEGACY, Filters(containers=("old",)))


def test_time_bounds_since_inclusive_until_exclusive() -> None:
    """--since includes its instant and --until excludes it, for both schemas."""
    at = datetime(2026, 11, 22, 2, 54, 43, tzinfo=timezone.utc)
    assert matches(LEGACY, Filters(since=at))
    assert not matches(LEGACY, Filters(until=at))
    assert matches(NEW, Filters(since=at, until=datetime(2026, 11, 23, tzinfo=timezone.utc)))


def test_numeric_user_is_not_a_name() -> None:
    """A user stored as a JSON number never equals the text of that number (as in jq)."""
    assert not matches({**NEW, "user": 1001}, Filters(users=("1001",)))


@given(
    user=st.text(min_size=1, max_size=12),
    ascii_only=st.booleans(),
    noise=st.lists(st.text(max_size=8), max_size=3),
)
def test_needles_never_drop_a_match(user: str, ascii_only: bool, noise: list[str]) -> None:
    """Whatever the user name and its JSON escaping, its line is among the candidates."""
    event = {**NEW, "user": user}
    others = [json.dumps({**NEW, "user": n}, ensure_ascii=True) for n in noise]
    line = json.dumps(event, ensure_ascii=ascii_only)
    chunk = "\n".join([*others, line, *others]).encode() + b"\n"
    filters = Filters(users=(user,))
    assert line.encode() in list(candidate_lines(chunk, needles(filters)))


def test_grep_needle_is_exact() -> None:
    """--grep pre-selects only lines that hold the text byte for byte."""
    chunk = b'{"a":"x"}\n{"a":"needle"}\n{"a":"y"}\n'
    assert list(candidate_lines(chunk, needles(Filters(grep="needle")))) == [b'{"a":"needle"}']


_SHORT = {'"': '\\"', "\\": "\\\\", "/": "\\/", "\b": "\\b", "\f": "\\f", "\n": "\\n"}
_RAW, _SHORT_FORM, _U_LOWER, _U_UPPER, _U_MIXED = range(5)


def _u_escape(char: str, pick: int) -> str:
    r"""``\uXXXX`` (a surrogate pair beyond U+FFFF) with hex digits in the picked case."""
    code = ord(char)
    units = (
        [code] if code <= 0xFFFF else [0xD800 + ((code - 0x10000) >> 10), 0xDC00 + (code & 0x3FF)]
    )
    out = []
    for unit in units:
        digits = f"{unit:04x}"
        if pick == _U_UPPER:
            digits = digits.upper()
        elif pick == _U_MIXED:
            digits = "".join(d.upper() if i % 2 else d for i, d in enumerate(digits))
        out.append("\\u" + digits)
    return "".join(out)


def _encode(text: str, choices: list[int]) -> str:
    r"""Write ``text`` as a JSON string body, each character raw, short (\/) or \u-escaped."""
    out = []
    for index, char in enumerate(text):
        pick = choices[index % len(choices)] if choices else _RAW
        must_escape = char in '"\\' or ord(char) < 0x20
        if pick == _SHORT_FORM and char in _SHORT:
            out.append(_SHORT[char])
        elif pick >= _U_LOWER or must_escape:
            out.append(_u_escape(char, pick))
        else:
            out.append(char)
    return "".join(out)


@given(
    user=st.text(alphabet=st.characters(codec="utf-8"), min_size=1, max_size=8),
    choices=st.lists(st.integers(_RAW, _U_MIXED), max_size=8),
    key_choices=st.lists(st.integers(_RAW, _U_MIXED), max_size=4),
)
def test_needles_find_every_escaped_spelling(
    user: str, choices: list[int], key_choices: list[int]
) -> None:
    r"""Any mix of raw, short (\/ \") and \u escapes in the value or the key is a candidate."""
    line = '{"a":1,"' + _encode("user", key_choices) + '":"' + _encode(user, choices) + '"}'
    assert json.loads(line)["user"] == user
    chunk = b'{"user":"x"}\n' + line.encode() + b'\n{"user":"y"}\n'
    assert line.encode() in list(candidate_lines(chunk, needles(Filters(users=(user,)))))


@given(
    value=st.text(alphabet=st.characters(codec="utf-8"), min_size=1, max_size=8),
    extra=st.text(max_size=4),
    choices=st.lists(st.integers(_RAW, _U_MIXED), max_size=8),
    field=st.sampled_from(["container", "legacy_container", "type_prefix", "type_glob"]),
)
def test_container_and_type_needles_find_every_escaped_spelling(
    value: str, extra: str, choices: list[int], field: str
) -> None:
    """Containers (both schemas) and type prefixes and globs: every escaped spelling is found."""
    if field == "container":
        event, filters = {"details": {"container": value}}, Filters(containers=(value,))
    elif field == "legacy_container":
        event, filters = {"container": value}, Filters(containers=(value,))
    elif field == "type_prefix":
        event, filters = {"event_type": value + extra}, Filters(types=(value,))
    else:
        event = {"event_type": extra + value}
        filters = Filters(types=("*" + value.replace("*", "").replace("?", "") + "*",))
    raw = json.dumps(event, ensure_ascii=False)
    text = next(iter(event.values()))
    text = text["container"] if isinstance(text, dict) else text
    line = raw.replace(json.dumps(text, ensure_ascii=False), '"' + _encode(text, choices) + '"')
    decoded = json.loads(line)
    if not matches(decoded, filters, line.encode()):
        return  # a glob with [ or ] in it, say: nothing to find
    chunk = b'{"event_type":"x"}\n' + line.encode() + b"\n"
    assert line.encode() in list(candidate_lines(chunk, needles(filters)))
