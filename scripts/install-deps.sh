#!/usr/bin/env bash
# Installs everything uringcat needs to build, test, install and demo on Debian 12 (bookworm).
# This is the one list of system packages: README's commands, scripts/test.sh's callers and
# .ci/run all go through it. Build dependencies come from Debian; subprojects/*.wrap are only
# fallbacks for other systems, and our scripts never let meson download them.
#
# Usage: scripts/install-deps.sh
#   Runs `apt-get update` + `apt-get install`, as root or through sudo. Outside CI it does
#   nothing when every package is already installed; with CI=true it always installs.
set -euo pipefail

packages=(
  g++                # GCC 12: the first compiler of the test matrix
  clang              # clang 14: the second one
  libclang-rt-14-dev # clang's ASan/UBSan/LSan runtimes, for the sanitizer build
  meson
  ninja-build
  pkg-config
  cmake              # find_package(uringcat) check, and meson's cmake module
  python3            # tests/run_seed_example.py (stdlib only)
  liburing-dev
  libc-ares-dev      # c-ares: async_resolve's DNS client, its sockets polled by the ring
  libgtest-dev
  libgmock-dev
  libbenchmark-dev
  libboost1.81-dev   # Boost.Asio (header-only): the alternative the benchmarks compare with
  clang-format       # STYLE.md point 14, checked by scripts/test.sh
  valgrind           # memcheck runs of the seed example and of a uringcat transfer
  socat              # peers of the uringcat CLI tests, and the throughput benchmark's rivals
  ncat
  netcat-openbsd
  iproute2           # bench/scan.sh: a dummy interface inside its own network namespace
  util-linux         # unshare(1), for the same
)

all_installed() {
  local n
  n=$(dpkg-query -W -f='${db:Status-Status}\n' "${packages[@]}" 2>/dev/null | grep -cx installed || true)
  [[ "$n" == "${#packages[@]}" ]]
}
if [[ "${CI:-}" != "true" ]] && all_installed; then
  echo "install-deps: all ${#packages[@]} packages already installed"
  exit 0
fi

sudo=()
if [[ "$(id -u)" != 0 ]]; then
  command -v sudo >/dev/null || { echo "install-deps: run as root or install sudo" >&2; exit 1; }
  sudo=(sudo)
fi

export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update
"${sudo[@]}" apt-get install -y --no-install-recommends "${packages[@]}"
