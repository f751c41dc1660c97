#!/usr/bin/env bash
# Starts and stops a throwaway PostgreSQL cluster for tests, on 127.0.0.1 only, in a temporary folder.
#
#   eval "$(scripts/pg-test-cluster.sh start)"   # sets PAYSIDECAR_TEST_POSTGRES_URL=postgres://postgres@127.0.0.1:PORT/postgres
#   scripts/pg-test-cluster.sh status            # prints the export line again if running; exit 1 if not
#   scripts/pg-test-cluster.sh stop              # stops the server and removes its folder
#
# On a fresh Debian/Ubuntu machine it first installs Debian's `postgresql` package (apt-get; sudo when not root).
# PostgreSQL refuses to run as root, so as root the server runs as the package's `postgres` system user.
# The cluster trades durability for speed (fsync, synchronous_commit and full_page_writes off): tests only.
# Its superuser is `postgres`, with trust authentication, reachable on loopback and through a socket in its folder.
# Both commands are idempotent: `start` on a running cluster prints its URL again; `stop` with none is a no-op.
# Success is quiet (`start` prints only the export line on stdout); a failure prints one line on stderr, exit 1.
#
# Environment (all optional):
#   PAYSIDECAR_PG_PORT        port to use (default: a free one, picked at random in 20000-59999)
#   PAYSIDECAR_PG_BINDIR      folder with initdb and pg_ctl (default: /usr/lib/postgresql/15/bin, then PATH)
#   PAYSIDECAR_PG_STATE_FILE  where `start` records the cluster for `stop` (default: one per user and checkout in /tmp)
#   PAYSIDECAR_PG_TMPDIR      parent of the cluster's folder (default: $TMPDIR or /tmp)
set -euo pipefail

PROG=pg-test-cluster
PG_MAJOR=15
FOLDER_PREFIX=pay-sidecar-pg.

die() { echo "$PROG: $*" >&2; exit 1; }

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
state_file=${PAYSIDECAR_PG_STATE_FILE:-/tmp/$PROG.$(id -u).$(printf '%s' "$repo_root" | cksum | cut -d' ' -f1).state}

# --- who runs the server ---------------------------------------------------------------------------------------------

if [ "$(id -u)" -eq 0 ]; then
  run_as=postgres
else
  run_as=$(id -un)
fi

# Runs a command as the server's user, from a folder that user can read (as root: through runuser, else su).
as_pg() {
  if [ "$(id -u)" -ne 0 ]; then
    (cd / && "$@")
  elif command -v runuser >/dev/null 2>&1; then
    (cd / && runuser -u postgres -- "$@")
  else
    (cd / && su -s /bin/sh postgres -c "$(printf '%q ' "$@")")
  fi
}

# --- finding or installing the binaries ------------------------------------------------------------------------------

find_bindir() {
  local d
  for d in "${PAYSIDECAR_PG_BINDIR:-}" "/usr/lib/postgresql/$PG_MAJOR/bin"; do
    if [ -n "$d" ] && [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ]; then echo "$d"; return 0; fi
  done
  if command -v initdb >/dev/null 2>&1 && command -v pg_ctl >/dev/null 2>&1; then
    dirname "$(command -v pg_ctl)"; return 0
  fi
  # Another major version from Debian's packages, newest first.
  for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -t/ -k4 -n -r); do
    if [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ]; then echo "$d"; return 0; fi
  done
  return 1
}

install_postgresql() {
  local sudo=() log
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null 2>&1 || die "initdb/pg_ctl not found, and installing postgresql needs root or sudo"
    sudo=(sudo)
  fi
  command -v apt-get >/dev/null 2>&1 || die "initdb/pg_ctl not found and apt-get is missing: install PostgreSQL $PG_MAJOR, or set PAYSIDECAR_PG_BINDIR"
  echo "$PROG: installing Debian's postgresql package (once)" >&2
  log=$(mktemp)
  if ! "${sudo[@]}" apt-get update -qq >"$log" 2>&1; then
    die "apt-get update failed: $(grep -v '^\s*$' "$log" | tail -n 1)"
  fi
  if ! "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >"$log" 2>&1; then
    die "apt-get install postgresql failed: $(grep -v '^\s*$' "$log" | tail -n 1)"
  fi
  rm -f "$log"
}

# --- the state file --------------------------------------------------------------------------------------------------

# Reads base=, port=, bindir=, run_as= lines into st_* variables (never sourced: it is data).
read_state() {
  st_base='' st_port='' st_bindir='' st_run_as=''
  [ -f "$state_file" ] || return 1
  local key value
  while IFS='=' read -r key value; do
    case "$key" in
      base) st_base=$value ;;
      port) st_port=$value ;;
      bindir) st_bindir=$value ;;
      run_as) st_run_as=$value ;;
    esac
  done <"$state_file"
  [ -n "$st_base" ] && [ -n "$st_port" ] && [ -n "$st_bindir" ]
}

url_line() { echo "export PAYSIDECAR_TEST_POSTGRES_URL=postgres://postgres@127.0.0.1:$1/postgres"; }

# True when the postmaster named in postmaster.pid is a live process (not gone, not a zombie awaiting its reaper:
# pg_ctl counts a zombie as running, and then waits in vain for it to stop).
postmaster_alive() {
  local pid state
  pid=$(head -n 1 "$st_base/data/postmaster.pid" 2>/dev/null) || return 1
  case "$pid" in ''|*[!0-9]*) return 1 ;; esac
  [ -r "/proc/$pid/stat" ] || { kill -0 "$pid" 2>/dev/null; return; }
  state=$(sed 's/^.*) \(.\).*$/\1/' "/proc/$pid/stat" 2>/dev/null) || return 1
  [ -n "$state" ] && [ "$state" != Z ] && [ "$state" != X ]
}

# True when the recorded cluster's server is running.
state_running() {
  [ -d "$st_base/data" ] && [ -x "$st_bindir/pg_ctl" ] && postmaster_alive \
    && as_pg "$st_bindir/pg_ctl" status -D "$st_base/data" >/dev/null 2>&1
}

# Stops the recorded cluster (if running) and removes its folder and the state file.
teardown() {
  if [ -d "$st_base/data" ] && state_running; then
    if ! as_pg "$st_bindir/pg_ctl" stop -D "$st_base/data" -m fast -w -t 30 >/dev/null 2>&1 && postmaster_alive; then
      as_pg "$st_bindir/pg_ctl" stop -D "$st_base/data" -m immediate -w -t 30 >/dev/null 2>&1 || ! postmaster_alive \
        || die "could not stop the server in $st_base/data (pg_ctl stop failed; postmaster pid $(head -n 1 "$st_base/data/postmaster.pid"))"
    fi
  fi
  # Only ever delete a folder this script made.
  case "$(basename "$st_base")" in
    "$FOLDER_PREFIX"*) rm -rf -- "$st_base" ;;
    *) die "refusing to delete $st_base: not a folder this script made (state file $state_file)" ;;
  esac
  rm -f -- "$state_file"
}

# --- commands --------------------------------------------------------------------------------------------------------

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# The last line of the server's log that says what went wrong.
log_reason() {
  local line
  line=$(grep -E 'FATAL|PANIC|ERROR|could not' "$1" 2>/dev/null | tail -n 1 || true)
  [ -n "$line" ] || line=$(grep -v '^\s*$' "$1" 2>/dev/null | tail -n 1 || true)
  echo "${line:-no log}"
}

cmd_start() {
  if read_state; then
    if state_running; then
      url_line "$st_port"
      return 0
    fi
    teardown   # left over from a crash or a reboot: start afresh
  fi

  local bindir
  if ! bindir=$(find_bindir); then
    install_postgresql
    bindir=$(find_bindir) || die "initdb/pg_ctl still not found after installing postgresql (looked in /usr/lib/postgresql/*/bin and PATH)"
  fi

  if [ "$(id -u)" -eq 0 ] && ! id -u postgres >/dev/null 2>&1; then
    die "running as root, but there is no 'postgres' user to run the server as (PostgreSQL refuses root)"
  fi

  # The cluster's folder: the server's user must be able to reach it.
  local parent=${PAYSIDECAR_PG_TMPDIR:-${TMPDIR:-/tmp}}
  if [ "$(id -u)" -eq 0 ] && ! as_pg test -w "$parent" -a -x "$parent"; then
    [ -z "${PAYSIDECAR_PG_TMPDIR:-}" ] || die "the postgres user cannot write to PAYSIDECAR_PG_TMPDIR=$parent"
    parent=/tmp
  fi
  local base
  base=$(mktemp -d "$parent/${FOLDER_PREFIX}XXXXXX") || die "could not create a temporary folder in $parent"
  [ "$(id -u)" -ne 0 ] || chown postgres: "$base"
  chmod 700 "$base"
  local data=$base/data log=$base/server.log

  # Recorded before anything can fail, so that `stop` (or the cleanup below) removes the folder.
  st_base=$base st_bindir=$bindir st_run_as=$run_as st_port=0
  cleanup_on_failure() { (teardown) >/dev/null 2>&1 || true; }

  if ! as_pg "$bindir/initdb" -D "$data" -U postgres --auth=trust --encoding=UTF8 --locale=C --no-sync \
      >"$base/initdb.log" 2>&1; then
    local reason
    reason=$(grep -v '^\s*$' "$base/initdb.log" | tail -n 1 || true)
    cleanup_on_failure
    die "initdb failed: $reason"
  fi

  # Trust, and only over loopback or the folder's own socket.
  as_pg sh -c "cat >'$data/pg_hba.conf'" <<'EOF'
# pg-test-cluster.sh: throwaway test cluster, trust over loopback only
local all         all                 trust
host  all         all   127.0.0.1/32  trust
host  replication all   127.0.0.1/32  trust
EOF

  local attempt port
  for attempt in 1 2 3 4 5 6 7 8; do
    if [ -n "${PAYSIDECAR_PG_PORT:-}" ]; then
      port=$PAYSIDECAR_PG_PORT
      port_in_use "$port" && { cleanup_on_failure; die "port $port (PAYSIDECAR_PG_PORT) is already in use on 127.0.0.1"; }
    else
      port=$((20000 + (RANDOM * 32768 + RANDOM) % 40000))
      port_in_use "$port" && continue
    fi
    # postgresql.auto.conf is read last, so these override anything above; rewritten on each attempt.
    as_pg sh -c "cat >'$data/postgresql.auto.conf'" <<EOF
# pg-test-cluster.sh: fast, throwaway, loopback-only
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$base'
max_connections = 300
fsync = off
synchronous_commit = off
full_page_writes = off
EOF
    if as_pg "$bindir/pg_ctl" start -D "$data" -l "$log" -w -t 60 -s >/dev/null 2>&1; then
      st_port=$port
      printf 'base=%s\nport=%s\nbindir=%s\nrun_as=%s\n' "$base" "$port" "$bindir" "$run_as" >"$state_file" \
        || { cleanup_on_failure; die "could not write the state file $state_file"; }
      url_line "$port"
      return 0
    fi
    # Another process took the port between the check and the bind: try another one.
    if [ -z "${PAYSIDECAR_PG_PORT:-}" ] && grep -q 'could not bind\|Address already in use\|could not create any TCP/IP sockets' "$log" 2>/dev/null; then
      continue
    fi
    local reason
    reason=$(log_reason "$log")
    cleanup_on_failure
    die "postgres did not start on 127.0.0.1:$port: $reason"
  done
  cleanup_on_failure
  die "no free port found on 127.0.0.1 after $attempt tries"
}

cmd_stop() {
  if ! read_state; then
    [ ! -e "$state_file" ] || rm -f -- "$state_file"
    return 0
  fi
  teardown
}

cmd_status() {
  read_state && state_running || { echo "$PROG: not running" >&2; exit 1; }
  url_line "$st_port"
}

case "${1:-}" in
  start) cmd_start ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
