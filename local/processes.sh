# Process supervision for the local development loop, sourced by local/stack and
# local/emulator/localstack (one implementation of "is it running" and "stop it"). Each process
# is started under setsid, so it leads a process group, and its pid is recorded in a file. The
# sourcing script defines `log MESSAGE` and `die MESSAGE`.

# Whether PID runs (a zombie does not: it has exited and only waits to be reaped, which some
# init processes do only every few seconds).
live() {
  local state
  state=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1) || return 1
  [ -n "$state" ] && [ "$state" != Z ] && [ "$state" != X ]
}

# Whether any process of process group PGID runs.
live_in_group() {
  local p
  for p in $(pgrep -g "$1"); do live "$p" && return 0; done
  return 1
}

# Prints the pid recorded in PIDFILE if that process runs (and, given PATTERN, if its command
# line matches that grep pattern: a reused pid is not ours).
recorded_pid() {
  local pidfile=$1 pattern=${2:-} pid
  pid=$(cat "$pidfile" 2>/dev/null) || return 1
  [[ "$pid" =~ ^[0-9]+$ ]] && live "$pid" || return 1
  if [ -n "$pattern" ]; then
    tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q "$pattern" || return 1
  fi
  echo "$pid"
}

# Stops what PIDFILE records (NAME in messages): SIGTERM to its process group, SIGKILL only if
# something of it still runs 10 s later; then waits (briefly) until the group is reaped too, so
# that nothing of it is listed afterwards, and removes PIDFILE. PATTERN as for recorded_pid.
stop_recorded() {
  local name=$1 pidfile=$2 pattern=${3:-} pid target t0 exited=""
  if ! pid=$(recorded_pid "$pidfile" "$pattern"); then
    rm -f "$pidfile"
    return 0
  fi
  # A group leader (setsid) is stopped with its group; anything else alone.
  if [ "$(ps -o pgid= -p "$pid" | tr -d ' ')" = "$pid" ]; then target="-$pid"; else target="$pid"; fi
  group_alive() {
    if [ "$target" = "-$pid" ]; then live_in_group "$pid"; else live "$pid"; fi
  }
  log "stopping $name (pid $pid${target:+, process group ${target#-}})"
  t0=${EPOCHREALTIME:-}
  kill -TERM -- "$target" 2>/dev/null || true
  for _ in $(seq 1 100); do group_alive || break; sleep 0.1; done
  if group_alive; then
    log "$name still runs 10 s after SIGTERM; sending KILL"
    kill -KILL -- "$target" 2>/dev/null || true
    for _ in $(seq 1 40); do group_alive || break; sleep 0.25; done
  fi
  group_alive && die "could not stop $name (pid $pid)"
  [ -n "$t0" ] && exited=$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }')
  for _ in $(seq 1 50); do pgrep -g "$pid" >/dev/null || break; sleep 0.1; done
  rm -f "$pidfile"
  log "stopped $name${exited:+ (exited ${exited} s after SIGTERM)}"
}
