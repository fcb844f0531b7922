#!/usr/bin/env bash
# Coverage-guided fuzzing of the library's parsers: builds every tests/fuzz/<name>_fuzz.cpp with
# libFuzzer + ASan + UBSan (clang++, -Dfuzzing=true, in build-fuzz/) and runs each for a fixed
# time, starting from tests/fuzz/corpus/<name>/.
#   scripts/fuzz.sh [SECONDS]   # per fuzzer, default 60
# The seed corpus is read-only: libFuzzer writes what it learns to a temporary working corpus,
# so the tree is never modified. A crash (or leak, or timeout) leaves its input in
# build-fuzz/fuzz-artifacts/<name>/, prints that path and fails the run; such an input belongs
# in tests/fuzz/corpus/<name>/ together with its fix, so that `meson test` replays it forever.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

seconds=${1:-60}
[[ $seconds =~ ^[1-9][0-9]*$ ]] || { echo "usage: $0 [SECONDS per fuzzer]" >&2; exit 2; }

dir=build-fuzz
tmp=$(mktemp -d "${TMPDIR:-/tmp}/uringcat-fuzz.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

if [[ -f "$dir/meson-private/coredata.dat" ]]; then
  CXX=clang++ meson setup --reconfigure "$dir" --wrap-mode=nodownload -Dfuzzing=true \
    -Dbenchmarks=false -Dtools=false
else
  CXX=clang++ meson setup "$dir" --wrap-mode=nodownload -Dfuzzing=true \
    -Dbenchmarks=false -Dtools=false
fi

names=()
for source in tests/fuzz/*_fuzz.cpp; do
  name=$(basename "$source" _fuzz.cpp)
  [[ -d tests/fuzz/corpus/$name ]] || { echo "no seed corpus tests/fuzz/corpus/$name" >&2; exit 1; }
  names+=("$name")
done
(( ${#names[@]} > 0 )) || { echo "no fuzz targets in tests/fuzz/" >&2; exit 1; }
meson compile -C "$dir" "${names[@]/%/_fuzz}"

failed=0
for name in "${names[@]}"; do
  printf '\n=== %s: %d s\n' "$name" "$seconds"
  artifacts=$dir/fuzz-artifacts/$name
  mkdir -p "$tmp/corpus-$name" "$artifacts"
  touch "$tmp/start-$name"
  # The first directory is the working corpus libFuzzer writes to; the seeds are only read.
  rc=0
  "$dir/tests/fuzz/${name}_fuzz" -max_total_time="$seconds" -max_len=512 -timeout=10 \
    -print_final_stats=1 -artifact_prefix="$artifacts/" \
    "$tmp/corpus-$name" "tests/fuzz/corpus/$name" || rc=$?
  if ((rc != 0)); then
    failed=1
    echo "$name: fuzzer failed (exit $rc); its inputs:" >&2
    found=0
    while IFS= read -r crash; do
      echo "  $crash   (reproduce: $dir/tests/fuzz/${name}_fuzz $crash)" >&2
      found=1
    done < <(find "$artifacts" -type f -newer "$tmp/start-$name" | sort)
    ((found)) || echo "  (none written; see the output above)" >&2
  fi
done
((failed == 0)) || exit 1
echo "fuzzing passed: ${names[*]}, $seconds s each"
