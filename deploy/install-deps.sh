#!/usr/bin/env bash
# Installs every build and test dependency of sparkstack on Debian 12 or Ubuntu 24.04, by package
# name (deploy/debian-packages.txt), then the test-only npm peers pinned by tests/package-lock.json.
# Idempotent: installs only what is missing. Run as root or with sudo available.
#   deploy/install-deps.sh              build + test dependencies
#   deploy/install-deps.sh --no-npm     skip the npm test peers (enough to build and run)
set -euo pipefail
cd "$(dirname "$0")/.."

with_npm=1
for arg in "$@"; do
  case "$arg" in
    --no-npm) with_npm=0 ;;
    *) echo "usage: $0 [--no-npm]" >&2; exit 2 ;;
  esac
done

sudo_cmd=()
if [ "$(id -u)" -ne 0 ]; then sudo_cmd=(sudo); fi

mapfile -t wanted < <(grep -v '^\s*#' deploy/debian-packages.txt | sed '/^\s*$/d')
# Node.js is needed only for the test peers; keep any node already installed (e.g. NodeSource's).
if [ "$with_npm" -eq 1 ] && ! command -v node >/dev/null 2>&1; then wanted+=(nodejs npm); fi

missing=()
for pkg in "${wanted[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$pkg")
  fi
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "install-deps: installing ${missing[*]}"
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends \
    "${missing[@]}"
else
  echo "install-deps: all Debian packages present"
fi

if [ "$with_npm" -eq 1 ]; then
  # npm ci only when the installed tree does not match the lock file.
  if [ ! -f tests/node_modules/.package-lock.json ] ||
     [ tests/package-lock.json -nt tests/node_modules/.package-lock.json ]; then
    echo "install-deps: installing the npm test peers (tests/package-lock.json)"
    # node-llama-cpp ships prebuilt CPU binaries: never let its install step download or build.
    # `npm install --no-save` rather than `npm ci`: the lock pins every version, but npm 11 writes
    # locks without other platforms' optional packages, which `npm ci` then rejects.
    (cd tests && NODE_LLAMA_CPP_SKIP_DOWNLOAD=true \
      npm install --no-save --no-audit --no-fund --loglevel=error)
  else
    echo "install-deps: npm test peers present"
  fi
fi
