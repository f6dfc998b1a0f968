#!/usr/bin/env bash
# Installs everything the test suite needs on a fresh Debian machine, then runs it.
# System packages: Chromium and Firefox ESR for the browser tests (Debian's builds; nothing is
# downloaded by the test tools themselves), nginx and systemd-analyze to check deploy/.
# PostgreSQL must listen on 127.0.0.1:5432 (started here when it is installed but down).
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v chromium >/dev/null || need_apt+=(chromium)
command -v firefox-esr >/dev/null || need_apt+=(firefox-esr)
command -v ip >/dev/null || need_apt+=(iproute2)  # the Firefox tests run in their own netns
command -v nginx >/dev/null || need_apt+=(nginx-light)
command -v systemd-analyze >/dev/null || need_apt+=(systemd)
command -v openssl >/dev/null || need_apt+=(openssl)
if [ ${#need_apt[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
  else
    echo "scripts/test.sh: please install ${need_apt[*]} (Debian packages)" >&2
    exit 1
  fi
fi

if command -v pg_isready >/dev/null && ! pg_isready -q -h 127.0.0.1 -p 5432; then
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start || true
  for _ in $(seq 1 30); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 1; done
fi

python3 -m venv .venv
.venv/bin/pip install -q --disable-pip-version-check -e '.[test]'
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy
exec .venv/bin/python -m pytest "$@"
