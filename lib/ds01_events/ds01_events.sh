# shellcheck shell=bash
# ds01_events.sh - record audit events from Bash scripts.
#
#   source "$(ds01-log --bash-path)"
#   log_event TYPE [USER] [SOURCE] [key=value ...]
#
# An empty USER means none; an empty SOURCE means the calling script's name.
# Values are text; key:=N with a number, true, false or null keeps that JSON type
# (anything else after := is handed to ds01-log, which checks it).
#
# log_event never exits or fails its caller (set -euo pipefail included), returns 0,
# and leaves no variables behind, BASH_REMATCH included (nothing here uses =~). It
# also works after `export -f log_event` in a child bash: it sources this file again
# when its helpers are missing. Bytes that are not UTF-8 become U+FFFD (the line is
# then built by ds01-log), so every line stays valid. The envelope is built in Bash itself: starting
# Python costs more than the whole job. The datagram goes to the watcher through
# logger(1) from util-linux, whose syslog header the watcher strips. Without a
# watcher socket the line is appended to DS01_EVENTS_FILE when writable, otherwise
# dropped into DS01_EVENTS_SPOOL for the watcher to collect.

# Text as a JSON string body, in the variable named by $1.
_ds01_json_escape() {
  local _s=$2 _out="" _c _i
  _s=${_s//\\/\\\\}
  _s=${_s//\"/\\\"}
  if [[ $_s == *[[:cntrl:]]* ]]; then
    _s=${_s//$'\n'/\\n}
    _s=${_s//$'\t'/\\t}
    _s=${_s//$'\r'/\\r}
    for ((_i = 0; _i < ${#_s}; _i++)); do
      _c=${_s:_i:1}
      case $_c in
        [[:cntrl:]]) printf -v _c '\\u%04x' "'$_c" ;;
      esac
      _out+=$_c
    done
    _s=$_out
  fi
  printf -v "$1" '%s' "$_s"
}

# category.action: lower-case [a-z0-9_] parts joined by dots. Globs, not =~, which
# would overwrite the caller's BASH_REMATCH (a local copy of it does not help).
_ds01_is_type() {
  case $1 in
    '' | .* | *. | *..* | *[!abcdefghijklmnopqrstuvwxyz0123456789_.]*) return 1 ;;
    *.*) return 0 ;;
  esac
  return 1
}

# A JSON number, true, false or null (what key:=VALUE may hold without Python).
_ds01_is_json_scalar() {
  local _v=$1 _int _frac _exp
  case $_v in true | false | null) return 0 ;; esac
  _v=${_v#-}
  case $_v in
    *[eE]*)
      _exp=${_v#*[eE]}
      _v=${_v%%[eE]*}
      _exp=${_exp#[-+]}
      case $_exp in '' | *[!0123456789]*) return 1 ;; esac
      ;;
  esac
  _int=${_v%%.*}
  if [[ $_v == *.* ]]; then
    _frac=${_v#*.}
    case $_frac in '' | *[!0123456789]*) return 1 ;; esac
  fi
  case $_int in
    0) return 0 ;;
    [123456789]*) case $_int in *[!0123456789]*) return 1 ;; esac ;;
    *) return 1 ;;
  esac
  return 0
}

_ds01_warn() {
  printf 'ds01-events: event %s not recorded (%s). %s\n' "$1" "$2" \
    "${3:-Start the watcher (systemctl start ds01-watcher) or set DS01_EVENTS_FILE to a writable file.}" >&2
}

_ds01_log_event() {
  local _type=${1-} _user=${2-} _source=${3-} _item _key _value _details="" _esc
  local _line _ts _secs _micros _id _sock _file _spool _tmp
  if ! _ds01_is_type "$_type"; then
    _ds01_warn "${_type:-(none)}" "the type is not category.action in lower case, e.g. maintenance.cleanup" \
      "Fix the call: see ds01-events types."
    return 0
  fi
  if [[ -z $_source ]]; then
    _source=${BASH_SOURCE[2]-}
    _source=${_source:-$0}
    _source=${_source##*/}
  fi
  shift 3 2>/dev/null || shift $#
  for _item in "$@"; do
    _key=${_item%%=*}
    if [[ $_key == "$_item" || -z $_key ]]; then
      # As the library this replaces did: drop the bad item, keep the event.
      printf "ds01-events: event %s: ignoring detail '%s' (not key=value). Fix the call.\n" \
        "$_type" "$_item" >&2
      continue
    fi
    _value=${_item#*=}
    if [[ $_key == *: ]]; then
      _key=${_key%:}
      if ! _ds01_is_json_scalar "$_value"; then
        _ds01_fallback "$_type" "$_user" "$_source" "${@}"
        return 0
      fi
      _ds01_json_escape _esc "$_key"
      _details+=",\"$_esc\":$_value"
    else
      _ds01_json_escape _esc "$_key"
      _details+=",\"$_esc\":"
      _ds01_json_escape _esc "$_value"
      _details+="\"$_esc\""
    fi
  done

  if [[ -n ${EPOCHREALTIME-} ]]; then
    _secs=${EPOCHREALTIME%[!0-9]*}
    _micros=${EPOCHREALTIME#*[!0-9]}
    TZ=UTC printf -v _ts '%(%Y-%m-%dT%H:%M:%S)T' "$_secs"
    _ts+=".${_micros}Z"
  else
    _ts=$(date -u +%Y-%m-%dT%H:%M:%S.%6NZ)
  fi
  if [[ -n ${SRANDOM-} ]]; then
    printf -v _id '%08x%08x%08x%08x' "$SRANDOM" "$SRANDOM" "$SRANDOM" "$SRANDOM"
  else
    printf -v _id '%04x%04x%04x%04x%04x%04x%04x%04x' "$RANDOM" "$RANDOM" "$RANDOM" "$RANDOM" "$RANDOM" "$RANDOM" "$RANDOM" "$RANDOM"
  fi

  _line="{\"timestamp\":\"$_ts\",\"event_type\":\"$_type\",\"schema_version\":\"1\""
  if [[ -n $_user ]]; then
    _ds01_json_escape _esc "$_user"
    _line+=",\"user\":\"$_esc\""
  fi
  _ds01_json_escape _esc "$_source"
  _line+=",\"source\":\"$_esc\""
  [[ -n $_details ]] && _line+=",\"details\":{${_details#,}}"
  _ds01_json_escape _esc "${HOSTNAME-}"
  _line+=",\"host\":\"$_esc\",\"id\":\"$_id\"}"

  if _ds01_not_utf8 "$_line"; then
    # Python reads the bytes as surrogates and writes each bad one as U+FFFD.
    _ds01_fallback "$_type" "$_user" "$_source" "$@"
    return 0
  fi
  if ((${#_line} > 2000)) && [[ $(printf '%s' "$_line" | wc -c) -ge 4096 ]]; then
    # Oversized: Python shortens the largest details and marks _truncated.
    _ds01_fallback "$_type" "$_user" "$_source" "$@"
    return 0
  fi

  _sock=${DS01_EVENTS_SOCKET:-/run/ds01/events.sock}
  _file=${DS01_EVENTS_FILE:-/var/log/ds01/events.jsonl}
  _spool=${DS01_EVENTS_SPOOL:-/var/spool/ds01/events}

  if [[ -S $_sock ]] && command -v logger >/dev/null 2>&1; then
    # -d: datagram; --socket-errors: fail instead of silently losing the event;
    # timeout: a wedged watcher must not hang the script.
    if timeout 2 logger -d -u "$_sock" --socket-errors=on --size 4096 -- "$_line" 2>/dev/null; then
      return 0
    fi
  fi
  if [[ ! -e $_file && -w ${_file%/*} ]] || [[ -f $_file && -w $_file ]]; then
    # One write with O_APPEND (>>) keeps concurrent writers' lines whole.
    if [[ -e $_file ]]; then
      printf '%s\n' "$_line" >>"$_file" 2>/dev/null && return 0
    else
      (umask 027 && printf '%s\n' "$_line" >>"$_file") 2>/dev/null && return 0
    fi
  fi
  if [[ -d $_spool && -w $_spool ]]; then
    _tmp="$_spool/$$-${SRANDOM:-$RANDOM$RANDOM}"
    if (umask 027 && printf '%s\n' "$_line" >"$_tmp.tmp") 2>/dev/null && mv -f "$_tmp.tmp" "$_tmp.json" 2>/dev/null; then
      return 0
    fi
  fi
  _ds01_warn "$_type" "no watcher socket at $_sock, $_file not writable, spool $_spool not writable"
  return 0
}

# True when the text holds bytes that are not UTF-8. Plain ASCII is decided in Bash;
# anything else is checked by iconv (libc-bin, always there).
_ds01_not_utf8() {
  # [:ascii:] matches byte by byte in any locale; no LC_ALL change (restoring a broken
  # locale of the caller's would print a warning).
  [[ $1 == *[![:ascii:]]* ]] || return 1
  if command -v iconv >/dev/null 2>&1; then
    ! printf '%s' "$1" | iconv -f UTF-8 -t UTF-8 >/dev/null 2>&1
  else
    return 0
  fi
}

# The complete Python path, for what Bash alone does not do (JSON values, truncation).
_ds01_fallback() {
  local _type=$1 _user=$2 _source=$3 _lib
  shift 3
  local -a _args=("$_type")
  [[ -n $_user ]] && _args+=("user=$_user")
  _args+=("source=$_source" "$@")
  _lib=${BASH_SOURCE[0]%/*}
  if command -v ds01-log >/dev/null 2>&1; then
    ds01-log "${_args[@]}" || true
  elif [[ -f $_lib/ds01_events.py ]]; then
    # Sourced from the old scripts' directory (install --compat): its loader runs ours.
    python3 "$_lib/ds01_events.py" log "${_args[@]}" || true
  else
    _lib=${BASH_SOURCE[0]%/*}
    PYTHONPATH="${_lib%/*}${PYTHONPATH:+:$PYTHONPATH}" python3 -m ds01_events log "${_args[@]}" || true
  fi
}

# Defined through eval so that the body names this file: `export -f log_event` passes
# only the function on to a child bash, which then sources the file for the helpers.
case ${BASH_SOURCE[0]} in
  /*) printf -v _ds01_self '%q' "${BASH_SOURCE[0]}" ;;
  *) printf -v _ds01_self '%q' "$PWD/${BASH_SOURCE[0]}" ;;
esac
eval "log_event() {
  # Part of an || list, so errexit is off inside: nothing here can end the caller.
  if ! declare -F _ds01_log_event >/dev/null; then
    source $_ds01_self >/dev/null 2>&1 || { printf 'ds01-events: event %s not recorded (cannot load %s)\\n' \"\${1-}\" $_ds01_self >&2; return 0; }
  fi
  _ds01_log_event \"\$@\" || true
  return 0
}"
unset _ds01_self
