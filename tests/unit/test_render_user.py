"""The USER column never presents a forgeable claim as fact."""

from __future__ import annotations

import io

from ds01_query.cli.render import user_cell
from ds01_query.cli.streams import Streams
from ds01_query.cli.table import render_table

NAMES = {0: "root", 1001: "alice", 1002: "bob"}


def account(uid: int) -> str:
    return NAMES.get(uid, f"uid {uid}")


def test_claim_matching_the_sender_is_shown_plainly():
    """A user's own event about themselves shows their name plainly."""
    assert user_cell({"user": "alice", "origin": {"uid": 1001}}, account) == "alice"


def test_claim_by_another_user_is_marked():
    """A user claiming another's name is shown as a claim with the real sender."""
    assert user_cell({"user": "alice", "origin": {"uid": 1002}}, account) == "alice? (sent by bob)"


def test_root_speaks_for_users():
    """Root's wrapper scripts record the user they acted for, shown plainly."""
    assert user_cell({"user": "alice", "origin": {"uid": 0}}, account) == "alice"


def test_unnamed_event_shows_its_sender_in_brackets():
    """An event without a user but with an origin names the sender, marked as such."""
    assert user_cell({"origin": {"uid": 1002}}, account) == "(bob)"
    assert user_cell({"origin": {"uid": 4242}}, account) == "(uid 4242)"


def test_events_without_origin_keep_their_user():
    """Watcher and legacy events have no origin: the user field is shown as recorded."""
    assert user_cell({"user": "carol"}, account) == "carol"
    assert user_cell({}, account) == "-"


def test_table_uses_the_marked_cell():
    """The rendered table carries the marking, escaped."""
    out = io.StringIO()
    render_table(
        [{"event_type": "auth.denied", "user": "root\x1b", "origin": {"uid": 65534}}],
        Streams(out, io.StringIO(), {}),
    )
    assert "? (sent by " in out.getvalue()
    assert "\x1b" not in out.getvalue()


def test_padded_claim_is_trimmed_and_bounded():
    """A claim padded with spaces, or very long, is trimmed and cut; the marker stays whole."""
    padded = {"user": "alice" + " " * 200, "origin": {"uid": 1002}}
    assert user_cell(padded, account) == "alice? (sent by bob)"
    long = user_cell({"user": "x" * 500, "origin": {"uid": 1002}}, account)
    assert long.endswith("…? (sent by bob)")
    assert len(long) < 60


def test_watcher_only_kinds_from_a_user_are_marked_with_the_uid():
    """container.*, watcher.* or source ds01-watcher sent by a user show "sent by uid N"."""
    for event in (
        {"event_type": "container.start", "user": "alice", "origin": {"uid": 1001}},
        {"event_type": "watcher.stop", "origin": {"uid": 1002}},
        {"event_type": "maintenance.cleanup", "source": "ds01-watcher", "origin": {"uid": 1001}},
    ):
        assert "(sent by uid 10" in user_cell(event, account)
    own = {"event_type": "container.start", "user": "alice", "source": "ds01-watcher"}
    assert user_cell(own, account) == "alice"
    assert user_cell({**own, "origin": {"uid": 0}}, account) == "alice"
