"""Reading the exporter's answer: GPUs by UUID on the energy counter, MIG, host labels."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from watcher.dcgm.metrics import UnreadableAnswer, read_exporter_answer

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "dcgm" / "mig-a100.prom"
MIG_GPU = "GPU-34319582-d595-d1c7-d1d2-179bcfa61660"
PLAIN_GPU = "GPU-8c16e996-bd76-aa91-17e7-b48bcd0208ba"


def test_mig_answer_counts_physical_gpus_by_uuid() -> None:
    """Two MIG instances of one GPU and a plain GPU are two GPUs; GPU_UTIL is not needed."""
    reading = read_exporter_answer(FIXTURE.read_text())
    assert reading.gpus == 2
    assert reading.energy_mj == {MIG_GPU: 319159391.0, PLAIN_GPU: 31035686671.0}
    assert reading.mig_instances == ((MIG_GPU, "1"), (MIG_GPU, "2"))
    assert reading.hostname == "gpu01"


def test_lower_case_hostname_label_is_read() -> None:
    """Releases that write hostname= instead of Hostname= are read the same."""
    text = FIXTURE.read_text().replace("Hostname=", "hostname=")
    reading = read_exporter_answer(text)
    assert reading.hostname == "gpu01"
    assert reading.gpus == 2


def test_answer_without_the_energy_series_has_no_gpus() -> None:
    """Only DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION counts GPUs."""
    lines = [
        line for line in FIXTURE.read_text().splitlines(keepends=True) if "TOTAL_ENERGY" not in line
    ]
    assert read_exporter_answer("".join(lines)).gpus == 0


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("", "empty"),
        ("\n\n", "empty"),
        ('DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION{gpu="0",UUID="GPU-a"} 3191', "cut off"),
        ('DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION{gpu="0",UUID="GP\n', "not Prometheus"),
    ],
)
def test_cut_or_empty_text_is_unreadable(text: str, why: str) -> None:
    """Empty text, a missing final newline or a broken line raise UnreadableAnswer."""
    with pytest.raises(UnreadableAnswer, match=why):
        read_exporter_answer(text)


@given(st.integers(min_value=1, max_value=len(FIXTURE.read_text()) - 1))
def test_any_cut_is_refused_or_reads_a_prefix(cut: int) -> None:
    """Cut anywhere, the answer is refused or (cut at a line end) reads no more than whole."""
    text = FIXTURE.read_text()[:cut]
    try:
        reading = read_exporter_answer(text)
    except UnreadableAnswer:
        return
    assert text.endswith("\n")
    assert reading.gpus <= 2
