#!/usr/bin/env bash
# Makes sure Debian's SoftHSM2 (a PKCS#11 token in software) is installed: the key
# tests and the HSM benchmark sign through it, with throwaway tokens of their own.
set -euo pipefail

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

module=/usr/lib/softhsm/libsofthsm2.so
if [ ! -e "$module" ] || ! command -v softhsm2-util >/dev/null; then
  echo "softhsm: installing Debian's softhsm2 (PKCS#11 token for the key tests)"
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends softhsm2 >/dev/null
fi
echo "softhsm: $(softhsm2-util --version) at $module"
