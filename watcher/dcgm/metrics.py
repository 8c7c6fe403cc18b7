"""Read one DCGM exporter answer: which GPUs it serves and their energy counters.

Pure: text in, `ExporterReading` out, with prometheus-client's own parser (the exporter's
labels carry quotes, commas and escapes a regular expression would get wrong). GPUs are
counted by the ``UUID`` label of ``DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION`` (a counter in mJ):
``DCGM_FI_DEV_GPU_UTIL`` is absent on MIG GPUs, and on those the exporter repeats the
parent's UUID for each GPU instance (``GPU_I_ID``), so one UUID is one physical GPU.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import msgspec
from prometheus_client.parser import text_string_to_metric_families

if TYPE_CHECKING:
    from prometheus_client.samples import Sample

ENERGY_SERIES = "DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION"
# Releases differ: 2.x wrote "Hostname", some builds and relabelled scrapes "hostname".
HOSTNAME_LABELS = ("Hostname", "hostname")
_ENERGY_SAMPLES = frozenset({ENERGY_SERIES, ENERGY_SERIES + "_total"})


class UnreadableAnswer(ValueError):
    """The answer is not Prometheus text; the message says where it broke."""


class ExporterReading(msgspec.Struct, frozen=True):
    """What one complete answer says about the GPUs."""

    # Physical GPU UUID -> energy counter (mJ); on MIG the highest over its instances.
    energy_mj: dict[str, float]
    # MIG instances seen (parent UUID, GPU_I_ID); empty on a machine without MIG.
    mig_instances: tuple[tuple[str, str], ...] = ()
    hostname: str | None = None
    series: int = 0

    @property
    def gpus(self) -> int:
        """How many physical GPUs the answer has an energy counter for."""
        return len(self.energy_mj)


def read_exporter_answer(text: str) -> ExporterReading:
    """Parse one answer. Raises `UnreadableAnswer` (one line) on anything but whole text.

    An answer cut off in the middle of a line can still parse (``...} 3191`` is a number),
    so text that does not end in a newline is refused: the format ends every line with one.
    """
    if not text.strip():
        msg = "empty answer"
        raise UnreadableAnswer(msg)
    if not text.endswith("\n"):
        msg = "answer cut off (no newline at the end)"
        raise UnreadableAnswer(msg)
    energy: dict[str, float] = {}
    mig: set[tuple[str, str]] = set()
    hostnames: list[str] = []
    series = 0
    try:
        for family in text_string_to_metric_families(text):
            series += len(family.samples)
            if family.name == ENERGY_SERIES:
                _read_energy(family.samples, energy, mig, hostnames)
    except Exception as exc:  # mostly ValueError; any parser error means unreadable text
        msg = f"not Prometheus text: {str(exc)[:200]}"
        raise UnreadableAnswer(msg) from None
    return ExporterReading(
        energy_mj=energy,
        mig_instances=tuple(sorted(mig)),
        hostname=hostnames[0] if hostnames else None,
        series=series,
    )


def _read_energy(
    samples: list[Sample],
    energy: dict[str, float],
    mig: set[tuple[str, str]],
    hostnames: list[str],
) -> None:
    for sample in samples:
        # The parser names a counter's samples NAME_total (and NAME_created).
        uuid = sample.labels.get("UUID")
        if sample.name not in _ENERGY_SAMPLES or not uuid or math.isnan(sample.value):
            continue
        energy[uuid] = max(sample.value, energy.get(uuid, -math.inf))
        if "GPU_I_ID" in sample.labels:
            mig.add((uuid, sample.labels["GPU_I_ID"]))
        if not hostnames:
            hostnames.extend(sample.labels[k] for k in HOSTNAME_LABELS if k in sample.labels)
