#!/usr/bin/env bash
# PgkdAspire's front door. Each command first runs the bootstrap (idempotent; seconds when nothing is missing).
#   ./build.sh run        the whole system under the Aspire AppHost, with the dashboard (Ctrl+C stops it)
#   ./build.sh test       every test: unit, and the real AppHost with RabbitMQ and Azurite
#   ./build.sh bootstrap  only install what is missing (rabbitmq-server, azurite, .NET packages)
#   ./build.sh reliability  fault and load scenarios (minutes, installs wrk): docs/reliability.md
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1

cmd="${1:-}"; [ $# -gt 0 ] && shift
case "$cmd" in
  bootstrap)
    scripts/bootstrap.sh ;;
  run)
    scripts/bootstrap.sh
    # exec: SIGTERM to this script reaches the AppHost, which stops every child process (broker included).
    exec dotnet run --project AppHost --launch-profile http -- "$@" ;;
  test)
    scripts/bootstrap.sh
    dotnet build PgkdAspire.sln --nologo -v q -clp:ErrorsOnly
    log=$(mktemp)
    set +e
    dotnet test PgkdAspire.sln --no-build --nologo "$@" 2>&1 | tee "$log"
    status=${PIPESTATUS[0]}
    set -e
    # One closing line for the whole suite, summed over the test projects.
    awk '/(Passed|Failed)! *- *Failed:/ { gsub(/,/, ""); for (i = 1; i <= NF; i++) { if ($i == "Failed:") f += $(i+1); if ($i == "Passed:") p += $(i+1); if ($i == "Skipped:") s += $(i+1) } }
         END { printf "tests: %d passed, %d failed, %d skipped\n", p, f, s }' "$log"
    rm -f "$log"
    exit "$status" ;;
  reliability)
    # Issue 8's fault and load scenarios through real AppHosts (minutes; NOT part of `test`): services killed and
    # RabbitMQ/Azurite restarted mid-run, a faulty teacher, wrk on /v1/classify. Measurements go to
    # artifacts/reliability/results.md; docs/reliability.md reports them.
    scripts/bootstrap.sh
    if ! command -v wrk >/dev/null; then
      sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
      $sudo apt-get install -y -qq wrk || { $sudo apt-get update -qq && $sudo apt-get install -y -qq wrk; }
    fi
    dotnet build tests/PgkdAspire.ReliabilityTests --nologo -v q -clp:ErrorsOnly
    mkdir -p artifacts/reliability && rm -f artifacts/reliability/results.md
    set +e
    dotnet test tests/PgkdAspire.ReliabilityTests --no-build --nologo "$@"
    status=$?
    set -e
    cat artifacts/reliability/results.md 2>/dev/null || true
    exit "$status" ;;
  *)
    echo "usage: ./build.sh run|test|bootstrap|reliability" >&2; exit 2 ;;
esac
