#!/usr/bin/env bash
# Checks the Prometheus alert rules (config/alerts) with promtool: the rules parse,
# and their unit tests (isthmus.rules.test.yml) pass. Installs Debian's
# `prometheus` package, which ships promtool, when promtool is missing.
set -euo pipefail

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

if ! command -v promtool >/dev/null; then
  echo "alerts: promtool missing; installing Debian's prometheus (it ships promtool)"
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends prometheus >/dev/null
fi

cd "$(dirname "$0")/../config/alerts"
promtool check rules isthmus.rules.yml
promtool test rules isthmus.rules.test.yml
