#!/usr/bin/env bash
# Runs Debian's rabbitmq-server in the foreground for the AppHost (no Docker), with an epmd of this instance's
# own (ERL_EPMD_PORT, loopback only). epmd runs as a child here rather than as the daemon Erlang would start,
# so that stopping this resource ends it too and no process of this AppHost is left behind.
set -u
server=/usr/lib/rabbitmq/bin/rabbitmq-server
if [ ! -x "$server" ]; then
  echo "rabbitmq-server not found at $server: run ./build.sh bootstrap (it installs Debian's rabbitmq-server)" >&2
  exit 127
fi
port="${ERL_EPMD_PORT:?ERL_EPMD_PORT must be set}"

epmd -port "$port" -address 127.0.0.1 &
epmd_pid=$!
# The broker must not start before epmd listens: its prelaunch then fails with "nodistribution" (seen on a loaded
# 2-core machine). Wait up to 10 s; an epmd that exits (port taken) is reported at once.
for _ in $(seq 1 100); do
  (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
  if ! kill -0 "$epmd_pid" 2>/dev/null; then
    echo "epmd could not listen on 127.0.0.1:$port (is the port taken? the AppHost option is --epmd-port)" >&2
    exit 1
  fi
  sleep 0.1
done
"$server" &
pid=$!

stop() {
  kill -TERM "$pid" 2>/dev/null
  while kill -0 "$pid" 2>/dev/null; do sleep 0.2; done
  kill -TERM "$epmd_pid" 2>/dev/null
}
trap 'stop; exit 0' TERM INT HUP

wait "$pid"
status=$?
kill -TERM "$epmd_pid" 2>/dev/null
exit "$status"
