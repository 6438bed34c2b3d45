#!/usr/bin/env bash
# Installs the machine packages the test suite uses and pip cannot provide: Debian's Chromium
# (the posture page's browser test), the PostgreSQL server binaries (rotation tests) and
# Prometheus for its promtool (the shipped alert rules are checked and unit-tested with it).
# Idempotent; does nothing when they are present. Needs root (or sudo) when something is missing.
set -euo pipefail
need=()
command -v chromium >/dev/null 2>&1 || need+=(chromium)
if ! command -v initdb >/dev/null 2>&1 && ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  need+=(postgresql)
fi
command -v promtool >/dev/null 2>&1 || need+=(prometheus)
command -v kubectl >/dev/null 2>&1 || true  # optional: tests put a stand-in on PATH
if [ ${#need[@]} -eq 0 ]; then
  exit 0
fi
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
echo "installing system packages: ${need[*]}"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
