#!/usr/bin/env bash
# Install the servers the test suite starts (Redis, PostgreSQL) and the browser its console tests drive (Debian's
# chromium: Playwright's own browser downloads do not work offline) from Debian's packages when they are missing.
# The tests start their own instances on free loopback ports in temporary directories; nothing here starts a
# service. Needs root or sudo; on a machine that has both servers already it does nothing.
set -euo pipefail
missing=()
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || missing+=(postgresql)
[ -x /usr/bin/chromium ] || missing+=(chromium)
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
echo "installing ${missing[*]} from Debian's packages (for the tests that need a real server)"
as_root=()
if [ "$(id -u)" -ne 0 ]; then
  as_root=(sudo)
fi
export DEBIAN_FRONTEND=noninteractive
"${as_root[@]}" apt-get update -qq
# policy-rc.d keeps the packages from starting their own services during the install (no init system here).
printf '#!/bin/sh\nexit 101\n' | "${as_root[@]}" tee /usr/sbin/policy-rc.d >/dev/null
"${as_root[@]}" chmod +x /usr/sbin/policy-rc.d
trap '"${as_root[@]}" rm -f /usr/sbin/policy-rc.d' EXIT
"${as_root[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
