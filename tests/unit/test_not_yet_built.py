"""Help and catalogue say which GPU parts run: none is described as running before it is."""

from __future__ import annotations

import io

import pytest

from ds01_events import catalogue
from ds01_query.cli.help_text import CONCEPTS
from ds01_query.cli.runner import Streams, run_types
from watcher.cli import build_parser


def _types() -> str:
    out = io.StringIO()
    run_types(Streams(out, io.StringIO(), {}))
    return out.getvalue()


@pytest.mark.skipif(catalogue.GPU_POLL_RUNS, reason="the NVML poll runs")
def test_concepts_say_the_gpu_poll_is_not_built() -> None:
    """--concepts does not claim the watcher watches NVML while the poll is not built."""
    assert "NVML poll" in CONCEPTS
    assert "Not yet built" in CONCEPTS
    assert "Docker and NVML" not in CONCEPTS


@pytest.mark.skipif(catalogue.DCGM_WATCHDOG_RUNS, reason="the DCGM watchdog runs")
def test_types_mark_what_is_not_written_yet() -> None:
    """`types` marks the NVML and DCGM types as not written yet, and only those."""
    text = _types()
    block = text.split("detection.host_gpu_process\n", 1)[1].split("\n", 2)[1]
    assert "not written yet" in block
    assert "not written yet" in text.split("monitoring.dcgm_restart\n", 1)[1].split("\n", 2)[1]
    assert "not written yet" not in text.split("container.stop\n", 1)[1].split("\n", 2)[1]


def test_the_one_switch_flips_the_catalogue(monkeypatch: pytest.MonkeyPatch) -> None:
    """Setting the part as running removes the note: one place to flip."""
    monkeypatch.setitem(catalogue.RUNS, "gpu-poll", value=True)
    monkeypatch.setitem(catalogue.RUNS, "dcgm-watchdog", value=True)
    assert "not written yet" not in _types()


@pytest.mark.skipif(catalogue.GPU_POLL_RUNS, reason="the NVML poll runs")
def test_watcher_help_says_gpu_has_no_effect_yet(capsys: pytest.CaptureFixture[str]) -> None:
    """ds01-watcher run --help says --gpu and --dcgm-url have no effect yet."""
    with pytest.raises(SystemExit):
        build_parser().parse_args(["run", "--help"])
    assert " ".join(capsys.readouterr().out.split()).count("no effect yet") == 2
