"""ds01-events against jq as the reference, on generated corpora split by rotation."""

from __future__ import annotations

import gzip
import io
import json
import shutil
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

import pytest

from bench.corpus import START, generate
from ds01_query.cli.main import main
from ds01_query.cli.streams import Streams

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.skipif(shutil.which("jq") is None, reason="jq is the reference")

COUNT = 6000
SPAN = timedelta(days=6)


@pytest.fixture(scope="module")
def logdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Build a live log with a .1, a dated .gz and a dated-epoch sibling, plus malformed lines."""
    root = tmp_path_factory.mktemp("logs")
    lines = list(generate(COUNT, seed=7, span=SPAN, variety=True, disorder=timedelta(seconds=90)))
    parts = [lines[:1500], lines[1500:3000], lines[3000:4500], lines[4500:]]
    (root / "events.jsonl.1").write_text("\n".join(parts[0]) + "\n", encoding="utf-8")
    with gzip.open(root / "events.jsonl-20251124.gz", "wt", encoding="utf-8") as out:
        out.write("\n".join(parts[1]) + "\nnot json at all\n")
    (root / "events.jsonl-20251125-1764000000").write_text(
        "\n".join(parts[2]) + "\n[1, 2]\n", encoding="utf-8"
    )
    (root / "events.jsonl").write_text("\n".join(parts[3]) + "\n{broken\n", encoding="utf-8")
    return root


def _ours(logdir: Path, *args: str) -> list[str]:
    """``ds01-events --file LOG --json --all ARGS``, run in this process."""
    raw = io.BytesIO()
    out = io.TextIOWrapper(raw, encoding="utf-8")
    streams = Streams(out, io.StringIO(), _env(), local=ZoneInfo("America/New_York"))
    file = str(logdir / "events.jsonl")
    assert main(["--file", file, "--json", "--all", *args], streams) == 0
    out.flush()
    return _normalise(raw.getvalue())


def _env() -> dict[str, str]:
    import os

    return {**os.environ, "TZ": "America/New_York"}


def _normalise(data: bytes) -> list[str]:
    if not data:
        return []
    out = subprocess.run(["jq", "-c", "."], input=data, capture_output=True, check=True)
    return out.stdout.decode().splitlines()


def _all_lines(logdir: Path) -> bytes:
    order = [
        "events.jsonl.1",
        "events.jsonl-20251124.gz",
        "events.jsonl-20251125-1764000000",
        "events.jsonl-20251122-1",
        "events.jsonl",
    ]
    data = b""
    for name in order:
        path = logdir / name
        if not path.exists():
            continue
        data += gzip.decompress(path.read_bytes()) if name.endswith(".gz") else path.read_bytes()
    return data


def _jq(logdir: Path, expression: str) -> list[str]:
    program = f'fromjson? | select(type == "object") | select({expression})'
    out = subprocess.run(
        ["jq", "-cR", program], input=_all_lines(logdir), capture_output=True, check=True
    )
    return out.stdout.decode().splitlines()


TYPE = '(if (.event_type|type) == "string" then .event_type else .event end)'
CID = '((if (.details|type) == "object" then .details.container_id else null end) // .container_id)'
CONTAINER = (
    '(((.details|type) == "object" and .details.container == "{c}") or .container == "{c}"'
    f' or (({CID}|type) == "string" and ({CID}|startswith("{{c}}"))))'
)
TIME = '(((.timestamp // .ts) | sub("\\\\.[0-9]+Z$"; "Z") | fromdateiso8601))'


def _epoch(hours: float) -> int:
    return int((START + timedelta(hours=hours)).timestamp())


CASES = [
    (["--user", "alice"], '.user == "alice"'),
    (["--user", "józef"], '.user == "józef"'),
    (["--user", "田中"], '.user == "田中"'),
    (["--user", "248835"], '.user == "248835"'),
    (["--user", "1.10", "--user", "bob"], '.user == "1.10" or .user == "bob"'),
    (["--type", "gpu"], f'{TYPE} | type == "string" and startswith("gpu")'),
    (["--type", "*.denied"], f'{TYPE} | type == "string" and test("^.*\\\\.denied$")'),
    (
        ["--type", "auth", "--type", "resource"],
        f'{TYPE} | type == "string" and (startswith("auth") or startswith("resource"))',
    ),
    (["--container", "alice-3._.1000"], CONTAINER.format(c="alice-3._.1000")),
    (["--container", "0"], CONTAINER.format(c="0")),
    (["--grep", "MIG-3"], ". != null"),
    (["--since", f"@{_epoch(30)}"], f"{TIME} >= {_epoch(30)}"),
    (
        ["--since", f"@{_epoch(36)}", "--until", f"@{_epoch(60)}"],
        f"{TIME} >= {_epoch(36)} and {TIME} < {_epoch(60)}",
    ),
    (
        ["--since", f"@{_epoch(71.9)}", "--user", "bob", "--type", "container"],
        f'{TIME} >= {_epoch(71.9)} and .user == "bob" and ({TYPE}|startswith("container"))',
    ),
    (["--until", f"@{_epoch(50)}", "--grep", "evil"], f"{TIME} < {_epoch(50)}"),
]


@pytest.mark.parametrize(("args", "expression"), CASES, ids=[" ".join(a) for a, _ in CASES])
def test_matches_jq(logdir: Path, args: list[str], expression: str) -> None:
    """Every filter combination returns exactly what jq selects after decoding every line."""
    expected = _jq(logdir, expression)
    if "--grep" in args:
        needle = args[args.index("--grep") + 1]
        raw = [ln for ln in _all_lines(logdir).decode().splitlines() if needle in ln]
        holding = set(_normalise("\n".join(raw).encode()))
        expected = [e for e in expected if e in holding]
    assert expected, "the case must select something to be meaningful"
    assert _ours(logdir, *args) == expected


def test_no_filter_returns_every_object(logdir: Path) -> None:
    """Without filters --json --all returns every decodable object of every file, oldest first."""
    assert _ours(logdir) == _jq(logdir, "true")


def test_duplicate_key_last_wins(logdir: Path) -> None:
    """A line whose first user key is alice but last is someone else does not match alice."""
    ours = [json.loads(line) for line in _ours(logdir, "--user", "alice")]
    assert all(event["user"] == "alice" for event in ours)
    raw = _all_lines(logdir).decode()
    assert '{"user":"alice","event_type":"gpu.allocate","timestamp"' in raw


def test_malformed_lines_counted_on_stderr(logdir: Path) -> None:
    """Malformed lines are skipped, counted on stderr, and the exit status stays 0."""
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "ds01_query.cli.main",
            "--file",
            str(logdir / "events.jsonl"),
            "--json",
            "--all",
        ],
        capture_output=True,
        check=False,
        env=_env(),
    )
    assert result.returncode == 0
    assert "skipped 3 malformed" in result.stderr.decode()
    assert b"broken" not in result.stdout


def test_last_n_with_since_matches_tail_of_all(logdir: Path) -> None:
    """The default view (last N, read from the end) is the tail of the full result."""
    args = ["--since", f"@{_epoch(71.9)}", "--type", "gpu"]
    everything = _ours(logdir, *args)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "ds01_query.cli.main",
            "--file",
            str(logdir / "events.jsonl"),
            "--json",
            "--limit",
            "400",
            *args,
        ],
        capture_output=True,
        check=True,
        env=_env(),
    )
    assert len(everything) > 400
    assert _normalise(result.stdout) == everything[-400:]


def test_since_tolerates_disorder_across_rotation(tmp_path: Path) -> None:
    """Lines a little out of order, even across the rotation boundary, are all found."""
    base = START.timestamp()

    def line(seconds: float, n: int) -> str:
        stamp = datetime.fromtimestamp(base + seconds, tz=timezone.utc)
        return json.dumps(
            {
                "timestamp": stamp.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
                "event_type": "container.start",
                "user": "u",
                "details": {"n": n},
            }
        )

    # Every third line was written 60 s late; the rotated file ends after the live one starts.
    rotated = [line(i * 10 - (60 if i % 3 == 0 else 0), i) for i in range(3000)]
    rotated.append(line(30_030, 3000))
    live = [line(30_000 + i * 10 - (60 if i % 3 == 0 else 0), 3001 + i) for i in range(3000)]
    (tmp_path / "events.jsonl-20251122-1").write_text("\n".join(rotated) + "\n")
    (tmp_path / "events.jsonl").write_text("\n".join(live) + "\n")
    for since in (15_000, 30_020, 30_000 + 14_995):
        expected = _jq(tmp_path, f"{TIME} >= {int(base) + since}")
        assert _ours(tmp_path, "--since", f"@{int(base) + since}") == expected
