#!/usr/bin/env bash
# The test command (README and .ci/run): everything a change must pass before it lands.
#   1. formatting: clang-format (STYLE.md point 14) on every C++ file in the tree;
#   2. g++ with -Dwerror=true: build everything, run `meson test` (gtest suite + seed example);
#   3. clang++ with -Dwerror=true: the same; then clang++ with ASan + UBSan + LeakSanitizer;
#      libFuzzer on the parsers for 30 s each; the seed example and a uringcat transfer under
#      valgrind;
#   4. a library-only build (-Dtests=false -Dbenchmarks=false -Dtools=false) installed into a
#      temporary prefix, then user programs built against the installed tree only:
#      g++ + pkg-config, and find_package(uringcat) from CMake; each runs the seed flow against
#      a loopback echo peer. README.md's example is compiled the same way.
# Dependencies must already be installed (scripts/install-deps.sh); meson never downloads.
# Build trees: build-test-gcc/ and build-test-clang/ (kept, so a rerun is incremental).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

tmp=$(mktemp -d "${TMPDIR:-/tmp}/uringcat-test.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

step() { printf '\n=== %s (at %d s)\n' "$*" "$SECONDS"; }

# meson setup, or reconfigure a build tree left by an earlier run.
setup() {
  local dir=$1
  shift
  if [[ -f "$dir/meson-private/coredata.dat" ]]; then
    meson setup --reconfigure "$dir" "$@"
  else
    meson setup "$dir" "$@"
  fi
}

build_and_test() {
  local name=$1 cxx=$2 dir=build-test-$1
  step "$name: build with -Dwerror=true"
  CXX=$cxx setup "$dir" --wrap-mode=nodownload -Dwerror=true
  meson compile -C "$dir"
  step "$name: meson test"
  meson test -C "$dir" --print-errorlogs 2>&1 | tee "$tmp/$name-test.log"
}

step "format: clang-format --dry-run -Werror"
mapfile -t sources < <(git ls-files --cached --others --exclude-standard -- \
  '*.cpp' '*.hpp' '*.h' '*.cc')
(( ${#sources[@]} > 0 )) || { echo "no C++ sources found (not a git checkout?)" >&2; exit 1; }
clang-format --dry-run -Werror "${sources[@]}"
echo "${#sources[@]} files formatted"

build_and_test gcc g++
build_and_test clang clang++

step "sanitizers: clang++ with ASan + UBSan + LeakSanitizer, the whole suite"
# clang, not g++: g++ does not guarantee symmetric transfer's tail calls under ASan (task.hpp).
# -fno-sanitize=function: clang 14's function sanitizer cannot handle coroutine frames.
CXX=clang++ setup build-test-asan --wrap-mode=nodownload -Dwerror=true -Dbenchmarks=false \
  -Db_sanitize=address,undefined -Db_lundef=false \
  -Dcpp_args=-fno-sanitize=function -Dcpp_link_args=-fno-sanitize=function
meson compile -C build-test-asan
UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 ASAN_OPTIONS=detect_leaks=1 \
  meson test -C build-test-asan --print-errorlogs 2>&1 | tee "$tmp/asan-test.log"

step "fuzzing: every libFuzzer target for 30 s (clang, ASan + UBSan)"
bash scripts/fuzz.sh 30  # three targets: 90 s, keeping the whole run near 6 minutes

step "valgrind: the seed example, both paths (memcheck, definite leaks are errors)"
python3 tests/run_seed_example.py \
  --wrapper "valgrind -q --error-exitcode=9 --leak-check=full --errors-for-leak-kinds=definite" \
  build-test-gcc/examples/seed_client

step "valgrind: a uringcat transfer, 1 MiB each way, listener and client both under memcheck"
python3 tests/cli/transfer_under.py \
  --wrapper "valgrind -q --error-exitcode=9 --leak-check=full --errors-for-leak-kinds=definite" \
  build-test-gcc/tools/uringcat

step "benchmarks: smoke run (a few seconds; no timing is asserted)"
meson test -C build-test-gcc --benchmark --print-errorlogs

step "install: library-only build into a temporary prefix"
prefix=$tmp/prefix
CXX=g++ meson setup "$tmp/build-lib" --wrap-mode=nodownload -Dwerror=true --prefix="$prefix" \
  -Dtests=false -Dbenchmarks=false -Dtools=false
meson compile -C "$tmp/build-lib"
targets=$(meson introspect --targets "$tmp/build-lib" |
  python3 -c 'import json, sys; print(" ".join(sorted(t["name"] for t in json.load(sys.stdin))))')
[[ "$targets" == "uringcat" ]] || { echo "library-only build has targets: $targets" >&2; exit 1; }
meson install -C "$tmp/build-lib" --quiet
libdir=$(dirname "$(find "$prefix" -name uringcat.pc -print -quit)")/..
libdir=$(cd "$libdir" && pwd)
find "$prefix" ! -type d -printf '  %P\n' | sort

step "install: g++ + pkg-config against the installed tree"
export PKG_CONFIG_PATH=$libdir/pkgconfig
echo "pkg-config uringcat: $(pkg-config --modversion uringcat): $(pkg-config --cflags --libs uringcat)"
cp examples/seed_client.cpp "$tmp/app.cpp"  # outside the source tree: no stray -I
# shellcheck disable=SC2046  # word splitting of $(pkg-config ...) is the point: users write it so
(cd "$tmp" && g++ -std=c++20 app.cpp $(pkg-config --cflags --libs uringcat) \
  -Wl,-rpath,"$libdir" -o app-pkgconfig)
python3 tests/run_seed_example.py "$tmp/app-pkgconfig"
echo "README.md's example:"
awk '/^```cpp$/ { body = 1; next } /^```$/ { if (body) exit } body' README.md >"$tmp/readme.cpp"
clang-format --style=file:.clang-format --dry-run -Werror "$tmp/readme.cpp"
# shellcheck disable=SC2046
(cd "$tmp" && g++ -std=c++20 -Wall -Wextra -Werror readme.cpp \
  $(pkg-config --cflags --libs uringcat) -o readme-example)
echo "compiles and links"

step "install: CMake find_package(uringcat) against the installed tree"
mkdir "$tmp/cmake-app"
cat >"$tmp/cmake-app/CMakeLists.txt" <<'EOF'
cmake_minimum_required(VERSION 3.16)
project(uringcat_consumer CXX)
find_package(uringcat 0.1 REQUIRED)
add_executable(app ../app.cpp)
target_link_libraries(app PRIVATE uringcat::uringcat)
EOF
cmake -S "$tmp/cmake-app" -B "$tmp/cmake-build" -G Ninja -DCMAKE_CXX_COMPILER=g++ \
  -DCMAKE_PREFIX_PATH="$prefix" --log-level=WARNING
cmake --build "$tmp/cmake-build"
python3 tests/run_seed_example.py "$tmp/cmake-build/app"

step "summary"
for name in gcc clang asan; do
  echo "meson test, $name:"
  grep -E '^(Ok|Expected Fail|Fail|Unexpected Pass|Skipped|Timeout): ' "$tmp/$name-test.log"
done
echo "install: library-only build, pkg-config app, README example and CMake app passed"
echo "all checks passed in $SECONDS s"
# One plain closing line over both compilers' suites.
count() {
  sed -n "s/^$1: *\([0-9][0-9]*\) *\$/\1/p" "$tmp"/gcc-test.log "$tmp"/clang-test.log "$tmp"/asan-test.log |
    awk '{ n += $1 } END { print n + 0 }'
}
echo "tests: $(($(count Ok) + $(count 'Expected Fail'))) passed, $(($(count Fail) + $(count Timeout))) failed, $(count Skipped) skipped"
