#!/usr/bin/env bash
# The demo that `./build.sh run` plays once the system is up: a small distillation run on the project's own demo
# dataset (the emulator as teacher, head mode: a few minutes on 2 cores), watched round by round with the pgkd CLI,
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

say "starting a 3-round distillation run on the demo dataset (teacher: the emulator; student: MiniLM, head mode)"
pgkd run --train "$data/seed_train.jsonl" --val "$data/seed_val.jsonl" --test "$data/test.jsonl" --labels "$data/labels.txt" \
  --rounds 3 --samples-per-round 16 --mode head --epochs 15 --task "Classify short news items by topic." --watch || exit 1

say "classifying with the promoted student:"
pgkd classify "The striker scored twice as the home side won the derby" \
              "Shares fell sharply after the bank reported a quarterly loss" \
              "Astronomers discover a new exoplanet with the space telescope" \
              "Leaders meet in Geneva to discuss the ceasefire"
