#!/usr/bin/env bash
# Installs the system packages pay-sidecar needs to build and test on Debian/Ubuntu, if they are missing.
# Swift itself is assumed (https://www.swift.org/install/). Safe to run repeatedly.
set -euo pipefail

packages=(pkg-config libcurl4-openssl-dev libsqlite3-dev ca-certificates)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ! command -v swift >/dev/null 2>&1; then
  echo "install-deps: swift is not on PATH; install Swift 6.2 or newer first (https://www.swift.org/install/)" >&2
  exit 2
fi
# The tests verify the sidecar's webhooks with the independent Python package standardwebhooks, its /metrics
# with prometheus_client's parser, and drive the console in headless Chromium through selenium.
if [ "${1:-}" = "--test" ]; then
  command -v python3 >/dev/null 2>&1 || missing+=(python3 python3-pip)
  command -v chromium >/dev/null 2>&1 || missing+=(chromium)
  command -v chromedriver >/dev/null 2>&1 || missing+=(chromium-driver)
fi
install_python_packages() {
  [ "${1:-}" = "--test" ] || return 0
  python3 -c "import standardwebhooks, prometheus_client, selenium" 2>/dev/null && return 0
  echo "install-deps: installing the Python packages standardwebhooks, prometheus_client and selenium (used by the tests)"
  python3 -m pip install --quiet standardwebhooks prometheus_client selenium 2>/dev/null \
    || python3 -m pip install --quiet --break-system-packages standardwebhooks prometheus_client selenium
}
if [ ${#missing[@]} -eq 0 ]; then
  install_python_packages "${1:-}"
  exit 0
fi
echo "install-deps: installing ${missing[*]}"
if [ "$(id -u)" -eq 0 ]; then
  SUDO=""
elif command -v sudo >/dev/null 2>&1; then
  SUDO="sudo"
else
  echo "install-deps: need root (or sudo) to apt-get install ${missing[*]}" >&2
  exit 2
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
install_python_packages "${1:-}"
