#!/usr/bin/env bash
# PgkdAspire's front door. Each command first runs the bootstrap (idempotent; seconds when nothing is missing).
#   ./build.sh run        the whole system under the Aspire AppHost, with the dashboard, and a demo distillation
#                         run on the project's demo dataset (Ctrl+C stops it)
#   ./build.sh test       every test: unit, and the real AppHost with RabbitMQ and Azurite
#   ./build.sh bootstrap  only install what is missing (rabbitmq-server, azurite, .NET packages)
#   ./build.sh reliability  fault and load scenarios (minutes, installs wrk): docs/reliability.md
#   ./build.sh bench      the benchmark (installs python3-torch and OpenBLAS with apt for the PyTorch comparison):
#                         docs/results.md from docs/results/{quality,speed,anatomy}.md; `./build.sh bench --help`
#                         lists the options, e.g. `./build.sh bench --sections speed,anatomy`
set -euo pipefail
# Where the user ran this: relative file arguments (./build.sh run --teacher-pool pool.jsonl) are taken from here.
export PGKD_CALLER_DIR="${PGKD_CALLER_DIR:-$PWD}"
cd "$(dirname "${BASH_SOURCE[0]}")"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1

cmd="${1:-}"; [ $# -gt 0 ] && shift
case "$cmd" in
  bootstrap)
    scripts/bootstrap.sh ;;
  run)
    # The dashboard and gateway ports are fixed by the launch settings: one `./build.sh run` at a time.
    for port in 15080 19080 20080 5080; do
      if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
        echo "[run] port $port is in use: is another ./build.sh run still running? Stop it (Ctrl+C) and try again." >&2
        exit 2
      fi
    done
    scripts/bootstrap.sh
    dotnet build AppHost --nologo -v q -clp:ErrorsOnly
    dotnet build src/Pgkd.Cli --nologo -v q -clp:ErrorsOnly
    # The AppHost runs in the background while the demo runs in front; the AppHost stops on SIGTERM (it ignores
    # SIGINT), so Ctrl+C here is turned into SIGTERM and every child process (broker included) ends with it.
    dotnet run --project AppHost --no-build --launch-profile http -- "$@" &
    apphost=$!
    stop() {
      echo; echo "[run] stopping the AppHost and everything it started (about 15 s)"
      kill -TERM "$apphost" 2>/dev/null; wait "$apphost"
      # `dotnet run` returns before the orchestrator has ended the broker, Azurite and the services: wait for
      # their ports, so a new run can start as soon as this one returns.
      for _ in $(seq 1 60); do
        busy=0
        for port in 15080 5080 5672 10000 4371; do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && busy=1; done
        [ "$busy" = 0 ] && break
        sleep 0.5
      done
      echo "[run] stopped"
      exit 0
    }
    trap stop INT TERM
    scripts/demo.sh "$apphost" || echo "[run] the demo did not finish; the system keeps running: look at the dashboard"
    echo "[run] dashboard: http://localhost:15080 (login link above), gateway: http://localhost:5080/scalar, reports: http://localhost:5080/runs"
    echo "[run] the system keeps running; Ctrl+C stops it"
    wait "$apphost" ;;
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
    # A `dotnet test` that is stopped (SIGTERM, a host that dies) can exit 0 with projects that never reported:
    # a full run must hear from every test project in the solution.
    reported=$(grep -cE '(Passed|Failed)! *- *Failed:' "$log" || true)
    expected=$(grep -c 'Tests\.csproj' PgkdAspire.sln || true)
    rm -f "$log"
    if [ "$status" -eq 0 ] && [ $# -eq 0 ] && [ "$reported" -lt "$expected" ]; then
      echo "tests: only $reported of $expected test projects reported a result: the run was cut short" >&2
      exit 1
    fi
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
  bench)
    # Issue 7's benchmark: the quality tables, the student's speed (in-process, through the gateway, TorchSharp,
    # PyTorch) and where a round's time goes; speed and anatomy start their own AppHost on free ports.
    scripts/bootstrap.sh
    # The speed section times PyTorch (Debian's python3-torch, run with /usr/bin/python3) on the same fine-tune step;
    # without an optimized BLAS Debian's torch falls back to the reference BLAS and is ~15x slower, so install OpenBLAS.
    if ! /usr/bin/python3 -c "import torch" 2>/dev/null || ! dpkg -s libopenblas0-openmp >/dev/null 2>&1; then
      sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
      # Not `apt-cache ... | grep -q`: under pipefail grep's early exit kills apt-cache with SIGPIPE (141), which read
      # as "no such package" on every fresh machine.
      has_torch() { local policy; policy=$(apt-cache policy python3-torch 2>/dev/null || true); [[ $policy == *"Candidate: "[0-9]* ]]; }
      has_torch || $sudo apt-get update -qq || true
      if has_torch; then
        $sudo apt-get install -y -qq python3-torch libopenblas0-openmp \
          || { $sudo apt-get update -qq && $sudo apt-get install -y -qq python3-torch libopenblas0-openmp; } \
          || export PGKD_BENCH_PYTORCH_UNAVAILABLE="apt-get install python3-torch libopenblas0-openmp failed"
      else
        export PGKD_BENCH_PYTORCH_UNAVAILABLE="apt has no installable python3-torch (apt-cache policy python3-torch shows no candidate)"
      fi
      [ -n "${PGKD_BENCH_PYTORCH_UNAVAILABLE:-}" ] && echo "[bench] $PGKD_BENCH_PYTORCH_UNAVAILABLE: the speed section reports PyTorch as not measured" >&2
    fi
    dotnet run -c Release --project src/Pgkd.Benchmarks -- "$@" ;;
  *)
    echo "usage: ./build.sh run|test|bootstrap|reliability|bench" >&2; exit 2 ;;
esac
