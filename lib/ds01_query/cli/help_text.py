"""The long help tiers of ds01-events: ``--info`` (reference) and ``--concepts``."""

from __future__ import annotations

from ds01_query.engine.timespec import ACCEPTED_FORMS

INFO = f"""ds01-events: query the ds01 audit trail (live log and rotated files, oldest first)

FILES
  DS01_EVENTS_FILE or --file PATH (repeatable; default /var/log/ds01/events.jsonl),
  with its rotated siblings PATH-YYYYMMDD, PATH-YYYYMMDD-EPOCH, PATH.N, each also .gz.

FILTERS (ANDed; a repeated filter is ORed)
  --user U          exactly this user name
  --type T          prefix (gpu: gpu.allocate, gpu.release); glob when T holds * (*.denied)
  --container C     details.container or legacy container equal to C, or container_id prefix
  --since TIMESPEC  at or after;  --until TIMESPEC  before
  --grep TEXT       TEXT occurs in the raw line
  --errors          failures: *.denied, *.reject, *fail*, *oom*, and container.stop
                    with a non-zero exit_code or oom true
  TIMESPEC: {ACCEPTED_FORMS}

OUTPUT
  (default)  a table, local time (the zone in its header), fitted to the terminal:
             at a terminal the last 50 matches (stderr says when older ones were
             left out), into a pipe or file every match; --limit N, --all
  --wide     the table with every detail key, whole, on one line
  --json     every matching line as JSONL, nothing else on stdout (pipe to jq);
             --limit N for the last N. At a terminal invisible characters are
             written as \\u escapes (the same JSON value)
  --summary  total, time range, counts by type, by user, per local day
  --follow   the last matches, then new ones as they arrive (survives rotation)
  Lines that are not JSON objects are skipped and counted on stderr.
  Refused (exit 2): --limit below 1, --json or --follow with --summary, --wide with
  --json or --summary, --all with --limit or --follow, an empty TIMESPEC.

HELP
  --help (options), --info (this), --concepts (what events are), --guided (asks
  what you want, prints the command it built, runs it)

SPEED
  A scan (--user, --container, --grep) searches the raw bytes at memmem speed
  and decodes only the lines that hold what it looks for. --since/--until bisect
  a file once it has been seen to be in time order (remembered per user in
  ~/.cache/ds01-events); any other file is read whole, so no line is missed.

COMMANDS (anywhere on the line: ds01-events --file F verify)
  types      the event catalogue and each type's detail keys
  verify     check every line of every file; problems as file:line, exit 1 if any
  Older forms: user U, type T, container C, today, errors, gpu, tail [N], json, stats

EXAMPLES
  ds01-events --user alice --since yesterday
  ds01-events --type gpu --since "2 days ago" --summary
  ds01-events --type '*.denied' --type gpu.reject --all
  ds01-events --container my-job._.1001 --json | jq .details
  ds01-events --since 2026-11-01 --until 2026-12-01 --summary
  ds01-events --follow --type container
  ds01-events errors --since today
"""

_CONCEPTS = """What an event is
  One JSON object per line in /var/log/ds01/events.jsonl, written by one process, the
  ds01-watcher service. It records what happened on the server: containers created,
  started, stopped or failed to start (from the Docker event stream), the GPUs and MIG
  slices containers hold (from their device requests), what the maintenance scripts
  did, and the watcher's own starts, stops and any gap it could not observe.
{gpu_status}
The envelope (schema_version "1")
  timestamp   UTC, 6 fractional digits, Z (shown here in local time)
  event_type  category.action, e.g. container.start, gpu.allocate, auth.denied
  user        who it concerns; source: which program reported it
  details     what else is known (container, container_id, gpu_devices, reason, ...)
  host, id    for shipping to a central store and de-duplication
  origin      who really sent it (uid, pid) - see below
  Older lines use ts, event and a top-level container; they are read the same way.

Where events come from
  The watcher watches Docker{nvml} itself; scripts send what Docker cannot see
  (auth.denied, maintenance.*, gpu.reject) to its socket, and the watcher writes them.

Rotation
  logrotate renames the live file to events.jsonl-YYYYMMDD-EPOCH (later gzipped) and the
  watcher creates a new one. ds01-events reads the rotated files too, oldest first, so
  queries over last month keep working; --follow carries on across a rotation.

Why origin can be trusted
  origin is stamped by the watcher from the kernel's credentials of the sending socket
  (SO_PASSCRED) or the owner of a spool file. A script cannot set it: an origin in what
  a client sends is discarded. A user field can say anything; origin.uid cannot lie.

Who may read
  The log holds other users' command lines: it is 0640 root:adm by default. Join the
  group (usermod -aG adm NAME) to read it.
"""


_GPU_STATUS = (
    "  It polls NVML too (when the NVML library is there and --gpu is not off):\n"
    "  which container or host process computes on which GPU or MIG device\n"
    "  (detection.host_gpu_process, detection.unmanaged_container, ...).\n"
    "  It watches the DCGM exporter too: its health and restarts (monitoring.*).\n"
)


CONCEPTS = _CONCEPTS.format(gpu_status=_GPU_STATUS, nvml=" and NVML")
