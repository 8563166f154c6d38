#!/usr/bin/env bash
# The element-wise passes (src/c/bp_elementwise.c) give bitwise the same
# results whichever vector width runs them: builds tools/clones_agree.c
# against a copy of the C sources with target_clones off, once per
# instruction set (baseline, AVX2, AVX-512; GCC and, if present, clang) and
# fails unless every build prints the same hash and each agrees with a plain
# scalar loop on the ReLU/identity derivative and its sums. Skips the
# instruction sets the CPU lacks; fails if nothing could be built. x86-64
# Linux with gcc.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cp "$repo"/src/c/*.h "$repo"/src/c/bp_elementwise.c "$work"/
# One build per -m flag: the clones attribute would pick the CPU's widest.
sed -i 's/^#define BP_CLONES __attribute__((target_clones([^)]*)))$/#define BP_CLONES/' \
    "$work/bp_platform.h"
grep -q '^#define BP_CLONES$' "$work/bp_platform.h" || {
    echo "clones_agree.sh: could not turn target_clones off in bp_platform.h" >&2; exit 2; }
flags="-O3 -fno-math-errno -fno-trapping-math -ffp-contract=off"
hashes=()
for cc in gcc clang; do
    command -v "$cc" >/dev/null || continue
    for isa in "-mno-avx" "-mavx2" "-mavx512f"; do
        case "$isa" in
            -mavx2) grep -qw avx2 /proc/cpuinfo || continue ;;
            -mavx512f) grep -qw avx512f /proc/cpuinfo || continue ;;
        esac
        # shellcheck disable=SC2086
        "$cc" $flags $isa -I"$work" "$repo/tools/clones_agree.c" "$work/bp_elementwise.c" \
            -lm -o "$work/agree"
        h="$("$work/agree")"
        echo "$cc $isa: $h"
        hashes+=("$h")
    done
done
if [ "${#hashes[@]}" -eq 0 ]; then
    echo "clones_agree.sh: no build ran (needs gcc or clang on x86-64)" >&2
    exit 2
fi
if [ "$(printf '%s\n' "${hashes[@]}" | sort -u | wc -l)" -ne 1 ]; then
    echo "clones_agree.sh: the builds disagree" >&2
    exit 1
fi
echo "clones agree: ${#hashes[@]} builds, one hash"
