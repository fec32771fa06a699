#!/usr/bin/env bash
# Installs the Debian packages arca needs to build, test and run, when they
# are missing. As root it runs apt-get; otherwise it prints the exact
# command and stops.
set -euo pipefail

pkgs=(
  build-essential cmake pkg-config
  libssl-dev openssl libyaml-dev libjansson-dev libsqlite3-dev sqlite3
  libevent-dev libcmocka-dev
  clang libclang-rt-14-dev
  python3 curl jq procps file util-linux
  libjemalloc-dev gdb strace redis-server redis-tools time
  gocryptfs fuse3
)

missing=()
for p in "${pkgs[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  [[ "$status" == "install ok installed" ]] || missing+=("$p")
done
[[ ${#missing[@]} -eq 0 ]] && exit 0

cmd="apt-get install -y --no-install-recommends ${missing[*]}"
if [[ $(id -u) -ne 0 ]]; then
  echo "arca: missing Debian packages: ${missing[*]}" >&2
  echo "arca: as root, run: apt-get update && $cmd" >&2
  exit 1
fi
echo "arca: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -q >/dev/null
$cmd >/dev/null
