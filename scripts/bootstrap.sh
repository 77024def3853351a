#!/usr/bin/env bash
# Installs what a fresh Debian machine lacks for PgkdAspire: rabbitmq-server (apt), azurite and openai (npm, into
# .tools/, git-ignored) and the .NET packages. Idempotent; a few seconds when everything is present.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
AZURITE_VERSION=3.37.0
# The npm OpenAI client: tests prove a client written outside this project talks to the teacher emulator.
OPENAI_NPM_VERSION=7.57.0

say() { printf '[bootstrap] %s\n' "$*"; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
  echo "[bootstrap] need root to run: $* (install sudo or run as root)" >&2; exit 1; fi; }

command -v dotnet >/dev/null || { echo "[bootstrap] dotnet not found: install the .NET 10 SDK" >&2; exit 1; }
command -v npm >/dev/null || { echo "[bootstrap] npm not found: apt-get install -y nodejs npm" >&2; exit 1; }

if [ ! -x /usr/lib/rabbitmq/bin/rabbitmq-server ]; then
  say "installing rabbitmq-server with apt (about 30 s)"
  as_root apt-get update -qq
  # policy-rc.d on these machines keeps apt from starting the system broker; the AppHost runs its own.
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq rabbitmq-server >/dev/null
fi

if [ ! -x /usr/bin/chromium ]; then
  say "installing chromium with apt (about 60 s)"
  as_root apt-get update -qq
  # The report page's browser test drives this Chromium with Playwright; Playwright never downloads a browser here.
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi

if [ ! -x "$root/.tools/node_modules/.bin/azurite-blob" ] \
   || ! grep -q "\"version\": \"$AZURITE_VERSION\"" "$root/.tools/node_modules/azurite/package.json" 2>/dev/null; then
  say "installing azurite@$AZURITE_VERSION into .tools/ (about 30 s)"
  mkdir -p "$root/.tools"
  npm install --prefix "$root/.tools" --no-audit --no-fund --loglevel=error "azurite@$AZURITE_VERSION" >/dev/null
fi

if ! grep -q "\"version\": \"$OPENAI_NPM_VERSION\"" "$root/.tools/node_modules/openai/package.json" 2>/dev/null; then
  say "installing openai@$OPENAI_NPM_VERSION (npm) into .tools/ (a few seconds)"
  mkdir -p "$root/.tools"
  npm install --prefix "$root/.tools" --no-audit --no-fund --loglevel=error "openai@$OPENAI_NPM_VERSION" >/dev/null
fi

# Quick when nothing changed (about 2 s); the build would restore anyway, but a failure reads clearer here.
say "restoring .NET packages"
dotnet restore "$root/PgkdAspire.sln" --nologo -v q
say "ready"
