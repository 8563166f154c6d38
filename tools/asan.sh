#!/usr/bin/env bash
# The test suite against an AddressSanitizer build of bpcore's extension.
#
#   tools/asan.sh [pytest arguments]      (default: the whole suite)
#
# Builds a copy of the working tree's sources with gcc -fsanitize=address in
# its own venv and directory (build/asan/, or $BPCORE_ASAN_DIR), so the normal
# build is left alone, then runs pytest with libasan preloaded into the
# uninstrumented Python. Any report aborts the process that made it (the
# pytest run, or the subprocess a test started, whose test then fails) and is
# written to build/asan/logs/; the script prints the reports and fails if there
# is one, or if pytest fails.
#
# Needs gcc (libasan) and Python >= 3.11 (tomllib reads the dependencies).
#
# alloc_dealloc_mismatch is off: uninstrumented C++ dependencies of the test
# extra (onnxruntime) may pair allocators in ways ASan misreads; bpcore's C
# uses malloc/free only.
#
# Leak detection is off: LeakSanitizer sees every allocation of the
# interpreter, NumPy and SciPy (thousands of "leaks" at exit), and a
# suppression by module would also hide ours, since every stack through our
# kernels also passes through the interpreter.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
work="${BPCORE_ASAN_DIR:-$repo/build/asan}"
src="$work/src"
venv="$work/venv"
logs="$work/logs"
start=$SECONDS

cc="${CC:-gcc}"
libasan="$("$cc" -print-file-name=libasan.so)"
if [ ! -e "$libasan" ]; then
    echo "tools/asan.sh: $cc has no libasan.so; install gcc (Debian: apt-get install gcc)" >&2
    exit 2
fi

echo "== ASan: copy the sources to $src =="
rm -rf "$src" "$logs"
mkdir -p "$src" "$logs"
if git -C "$repo" rev-parse --git-dir >/dev/null 2>&1; then
    (cd "$repo" && git ls-files -z --cached --others --exclude-standard \
        | tar --null -T - -cf -) | tar -xf - -C "$src"
else
    (cd "$repo" && tar --exclude=./build --exclude='*.so' -cf - .) | tar -xf - -C "$src"
fi

echo "== ASan: build in $venv =="
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
# shellcheck disable=SC1091
. "$venv/bin/activate"
python -m pip install -q --upgrade pip
# The build requirements of pyproject.toml (a venv may come with an older setuptools).
python -m pip install -q --upgrade "setuptools>=77" "Cython>=3.0.10" "numpy>=2.0" "scipy>=1.11"
# The runtime and test dependencies from pyproject.toml, then one ASan build
# of bpcore alone (torch is not installed: its cross-checks skip here).
deps="$(python - "$src/pyproject.toml" <<'PY'
import sys, tomllib
project = tomllib.load(open(sys.argv[1], "rb"))["project"]
# matplotlib left out: its C++ extensions abort under a preloaded libasan
# ("CHECK failed: ... real___cxa_throw") at import; the plot tests skip here.
print("\n".join(d for d in project["dependencies"] + project["optional-dependencies"]["test"]
                if not d.startswith("matplotlib")))
PY
)"
mapfile -t deps <<< "$deps"
python -m pip install -q "${deps[@]}"
BPCORE_STRIP=0 CC="$cc" CFLAGS="-fsanitize=address -fno-omit-frame-pointer -g" \
    LDFLAGS="-fsanitize=address" \
    python -m pip install -q --no-build-isolation --force-reinstall --no-deps "$src"
# (Importing it here would fail: libasan must be loaded first.)
ext="$(ls "$(python -c 'import sysconfig; print(sysconfig.get_paths()["platlib"])')"/bpcore/_kernels*.so 2>/dev/null || true)"
# ldd's output is read whole before grep looks at it: under pipefail,
# `ldd | grep -q` failed now and then, when grep exited at its first match and
# the loader, still listing, died of SIGPIPE (1 in 300 runs here; it failed CI).
libs="$( [ -n "$ext" ] && ldd "$ext" || true)"
if [ -z "$ext" ] || ! grep -q libasan <<< "$libs"; then
    echo "tools/asan.sh: the installed extension ($ext) is not linked with libasan" >&2
    exit 2
fi
echo "instrumented: $ext ($((SECONDS - start)) s so far)"

echo "== ASan: pytest $* =="
cd "$src"
status=0
LD_PRELOAD="$libasan" PYTHONMALLOC=malloc \
    ASAN_OPTIONS="detect_leaks=0:abort_on_error=1:halt_on_error=1:alloc_dealloc_mismatch=0:log_path=$logs/asan" \
    python -m pytest -q -p no:cacheprovider "$@" || status=$?

reports=$(find "$logs" -type f | wc -l)
for f in "$logs"/*; do
    [ -e "$f" ] && { echo "---- $f"; cat "$f"; }
done
echo "ASan: reports: $reports; pytest exit $status; $((SECONDS - start)) s"
if [ "$reports" -ne 0 ] || [ "$status" -ne 0 ]; then
    exit 1
fi
