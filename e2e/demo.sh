#!/usr/bin/env bash
# make demo: a whole sparegrid grid on this machine. A coordinator on SQLite
# in demo mode (new agents are approved automatically, and labelled so), one
# local agent with a bookworm testbed (built once, then reused), and real
# autopkgtest runs of the archive package hello and the bundled example
# package. Ctrl-C stops everything.
set -euo pipefail
cd "$(dirname "$0")/.."

bin=$PWD/bin
demo=${SPAREGRID_DEMO_DIR:-$PWD/.demo}
agents_addr=${SPAREGRID_DEMO_AGENTS:-127.0.0.1:7443}
http_addr=${SPAREGRID_DEMO_HTTP:-127.0.0.1:8080}
export SPAREGRID_SERVER=http://$http_addr

say() { printf '\n\033[1m== %s\033[0m\n' "$*" >&2; }

pids=()
cleanup() {
  trap - INT TERM EXIT
  say "stopping"
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  echo "stopped; state kept in $demo (make clean removes it)" >&2
}
trap cleanup EXIT
trap 'exit 0' INT TERM

mkdir -p "$demo"
if [[ ! -f $demo/coordinator/sparegrid.db ]]; then
  say "creating the coordinator's data directory"
  "$bin/sparegrid-coordinator" init --data "$demo/coordinator" >/dev/null
fi
export SPAREGRID_TOKEN_FILE=$demo/coordinator/admin.token

say "starting the coordinator (demo mode) on $agents_addr/udp and $http_addr"
"$bin/sparegrid-coordinator" serve --data "$demo/coordinator" --agents "$agents_addr" \
  --http "$http_addr" --demo 2>"$demo/coordinator.log" &
pids+=($!)
for _ in $(seq 100); do
  "$bin/sparegrid" jobs --limit 1 >/dev/null 2>&1 && break
  sleep 0.2
done
"$bin/sparegrid" jobs --limit 1 >/dev/null || { cat "$demo/coordinator.log" >&2; exit 1; }

if [[ ! -f $demo/agent/agent.json ]]; then
  say "registering a local agent (auto-approved: demo mode only)"
  "$bin/sparegrid-agent" register --coordinator "$agents_addr" \
    --ca-sha256 "$(cat "$demo/coordinator/ca.sha256")" --owner admin \
    --state "$demo/agent" --name "demo-$(hostname)" >/dev/null
fi
if ! "$bin/sparegrid-agent" testbed list --state "$demo/agent" --json | grep -q '"bookworm"'; then
  say "building the bookworm testbed with mmdebstrap (once; reused on later runs)"
  "$bin/sparegrid-agent" testbed build --release bookworm --state "$demo/agent" >/dev/null
fi

say "starting the agent"
"$bin/sparegrid-agent" run --state "$demo/agent" 2>"$demo/agent.log" &
pids+=($!)

say "submitting hello (from the archive) and the example package (uploaded)"
hello=$("$bin/sparegrid" submit hello --release bookworm)
example=$("$bin/sparegrid" submit --source e2e/testdata/fixture --release bookworm)
echo "jobs $hello and $example queued; this takes a minute or two" >&2

for id in "$hello" "$example"; do
  until "$bin/sparegrid" show "$id" --json | grep -Eq '"state": "(done|cancelled)"'; do sleep 2; done
  say "job $id"
  "$bin/sparegrid" show "$id"
  "$bin/sparegrid" verify "$id" || true
done

say "recent jobs: http://$http_addr/"
echo "logs: $demo/coordinator.log and $demo/agent.log; press Ctrl-C to stop" >&2
wait
