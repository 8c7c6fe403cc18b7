"""The USER column never presents a forgeable claim as fact."""

from __future__ import annotations

from ds01_query.cli.render import table, user_cell

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
    text = table(
        [{"event_type": "auth.denied", "user": "root\\x1b", "origin": {"uid": 65534}}],
        colour=False,
        local=None,
    )
    assert "? (sent by " in text
