#!/usr/bin/env bash
# System packages the tests need: Debian's Chromium (browser tests of the widget),
# docker-compose 1.29 (validates docker-compose.yml without a Docker engine) and nginx (the
# load balancer of scripts/serve-replicas.sh).
set -euo pipefail
missing=()
[ -x /usr/bin/chromium ] || missing+=(chromium)
command -v docker-compose >/dev/null || missing+=(docker-compose)
command -v nginx >/dev/null || missing+=(nginx-light)
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
  echo "system-packages: installing ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
  echo "system-packages: ${missing[*]} missing; install them (Debian: apt-get install ${missing[*]})" \
       "or their tests are skipped" >&2
fi
