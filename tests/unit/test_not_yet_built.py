"""Help and catalogue say which GPU parts run: none is described as running before it is."""

from __future__ import annotations

import io

import pytest

from ds01_events import parts
from ds01_query.cli.help_text import CONCEPTS
from ds01_query.cli.runner import Streams, run_types
from watcher.cli import build_parser


def _types() -> str:
    out = io.StringIO()
    run_types(Streams(out, io.StringIO(), {}))
    return out.getvalue()


@pytest.mark.skipif(parts.GPU_POLL_RUNS, reason="the NVML poll runs")
def test_concepts_say_the_gpu_poll_is_not_built() -> None:
    """--concepts does not claim the watcher watches NVML while the poll is not built."""
    assert "NVML poll" in CONCEPTS
    assert "Not yet built" in CONCEPTS
    assert "Docker and NVML" not in CONCEPTS


def _note(text: str, name: str) -> str:
    """The line below a type's description in `types` (its note, if any)."""
    return text.split(f"{name}\n", 1)[1].split("\n", 2)[1]


def test_types_mark_what_is_not_written_yet() -> None:
    """`types` marks a type as not written yet exactly when the part writing it does not run."""
    text = _types()
    for name, part in (
        ("detection.host_gpu_process", "gpu-poll"),
        ("monitoring.dcgm_restart", "dcgm-watchdog"),
    ):
        assert ("not written yet" in _note(text, name)) == (not parts.RUNS[part])
    assert "not written yet" not in _note(text, "container.stop")


def test_the_one_switch_flips_the_catalogue(monkeypatch: pytest.MonkeyPatch) -> None:
    """One switch per part: off marks exactly its types, on removes every mark."""
    monkeypatch.setitem(parts.RUNS, "gpu-poll", value=False)
    monkeypatch.setitem(parts.RUNS, "dcgm-watchdog", value=True)
    text = _types()
    assert "not written yet" in _note(text, "detection.host_gpu_process")
    assert "not written yet" not in _note(text, "monitoring.dcgm_restart")
    monkeypatch.setitem(parts.RUNS, "gpu-poll", value=True)
    assert "not written yet" not in _types()


def test_watcher_help_says_which_settings_have_no_effect_yet(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """ds01-watcher run --help says "no effect yet" once per part that does not run."""
    with pytest.raises(SystemExit):
        build_parser().parse_args(["run", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert text.count("no effect yet") == sum(not runs for runs in parts.RUNS.values())
    if not parts.GPU_POLL_RUNS:
        assert "auto or off (no effect yet" in text
