"""--summary without filters counts exactly what the filtered path counts, malformed lines or not."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from bench.corpus import generate
from ds01_query.engine.summary import summarize_events, summarize_files
from ds01_query.scan.search import ScanStats, decode_event

if TYPE_CHECKING:
    from pathlib import Path


@pytest.mark.parametrize("malformed", [0.0, 0.002, 0.05])
def test_fast_path_counts_like_the_filtered_path(tmp_path: Path, malformed: float) -> None:
    """Chunks with a few malformed lines (decoded in groups) give the same counts."""
    lines = list(generate(5000, seed=3, variety=True, malformed=malformed))
    lines[10:10] = ["", "[1, 2]", "   ", '{"user":"\\ud800"}']
    path = tmp_path / "events.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    stats = ScanStats()
    fast = summarize_files([path], stats)
    events = [e for e in map(decode_event, (x.encode() for x in lines if x.strip())) if e]
    slow = summarize_events(events)
    assert (fast.total, fast.by_type, fast.by_user) == (slow.total, slow.by_type, slow.by_user)
    assert (fast.first, fast.last, fast.buckets) == (slow.first, slow.last, slow.buckets)
    assert stats.malformed == sum(1 for x in lines if x.strip()) - len(events)
