#!/usr/bin/env bash
# The demo that `./build.sh run` plays once the system is up: a small distillation run on the project's own demo
# dataset (the emulator as teacher with the dataset's own pool, head mode: about a minute on 2 cores), watched round by round with the pgkd CLI,
# then a few texts classified by the promoted student through the gateway.
set -uo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
apphost_pid="${1:-}"
data="$root/src/Pgkd.TeacherEmulator/DemoData"
pgkd() { dotnet "$root/src/Pgkd.Cli/bin/Debug/net10.0/pgkd.dll" "$@"; }
say() { printf '\n[demo] %s\n' "$*"; }

say "waiting for the gateway at http://localhost:5080 ..."
for _ in $(seq 1 120); do
  [ -n "$apphost_pid" ] && ! kill -0 "$apphost_pid" 2>/dev/null && { echo "[demo] the AppHost exited; see its messages above" >&2; exit 1; }
  pgkd models >/dev/null 2>&1 && break
  sleep 1
done
pgkd models >/dev/null 2>&1 || { echo "[demo] the gateway did not answer within 2 minutes" >&2; exit 1; }

say "starting a 3-round distillation run on the demo dataset: customer messages to a shop in 6 intents with confusable pairs"
say "(teacher: the emulator, answering from the demo's own pool; student: MiniLM, head mode)"
pgkd run --train "$data/seed_train.jsonl" --val "$data/seed_val.jsonl" --test "$data/test.jsonl" --labels "$data/labels.txt" \
  --pool "$data/pool.jsonl" --rounds 3 --samples-per-round 24 --mode head \
  --task "Classify customer messages to an online shop's support desk by what the customer wants." --watch || exit 1

say "classifying with the promoted student:"
pgkd classify "The parcel came yesterday but the mug inside was smashed to bits" \
              "My refund for the boots still has not reached my card" \
              "Can I still stop my order? I bought the wrong lamp" \
              "I was sent a green scarf instead of the grey one I ordered"
