#!/usr/bin/env bash
# Build (or reuse) a free-threaded CPython 3.13 ("3.13t") from Debian's source package.
#
# The interpreter is cached outside the clone, in $LOOMNET_FT_HOME (default
# ~/.cache/loomnet/python3.13t), so a second run only checks it and takes seconds.
# Prints the interpreter's path on the last line of stdout.
#
# Exit codes: 0 built or reused; 3 the source could not be obtained (one line on
# stderr says so; callers such as .ci/run treat this as "skip"); anything else is a
# real failure.
set -euo pipefail

VERSION="${LOOMNET_FT_VERSION:-3.13.15-1}"
UPSTREAM="${VERSION%-*}"
PREFIX="${LOOMNET_FT_HOME:-$HOME/.cache/loomnet/python3.13t}"
PY="$PREFIX/bin/python3.13t"
SUITES="${LOOMNET_FT_SUITES:-trixie sid}"

log() { echo "build-freethreaded-python: $*" >&2; }

if [[ -x "$PY" ]] && "$PY" -c 'import sys; sys.exit(sys._is_gil_enabled())' 2>/dev/null; then
    log "reusing $PY"
    echo "$PY"
    exit 0
fi

as_root() { if [[ $(id -u) -eq 0 ]]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else return 1; fi; }

BUILD_DEPS=(build-essential libssl-dev zlib1g-dev libffi-dev libbz2-dev liblzma-dev
            libsqlite3-dev libreadline-dev uuid-dev xz-utils dpkg-dev)
missing=()
for pkg in "${BUILD_DEPS[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if ((${#missing[@]})); then
    log "installing build packages: ${missing[*]}"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >&2 \
        || { as_root apt-get update -qq >&2 && as_root env DEBIAN_FRONTEND=noninteractive \
             apt-get install -y -qq "${missing[@]}" >&2; } \
        || { echo "free-threaded CPython skipped: cannot install the build packages (${missing[*]})" >&2; exit 3; }
fi

WORK="$(mktemp -d "${TMPDIR:-/tmp}/loomnet-ft-build.XXXXXX")"
SRC_LIST="/etc/apt/sources.list.d/loomnet-ft-src.sources"
cleanup() {
    if [[ -f "$SRC_LIST" ]]; then
        as_root rm -f "$SRC_LIST"
        as_root apt-get update -qq >/dev/null 2>&1 || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT

# A temporary deb-src entry on the mirror the machine already uses; removed on exit.
MIRROR="$(cat /etc/apt/sources.list.d/*.sources 2>/dev/null | sed -n 's|^URIs:[[:space:]]*\(https\?://[^ ]*/debian/\?\)[[:space:]]*$|\1|p' | head -1 || true)"
MIRROR="${MIRROR:-http://deb.debian.org/debian}"
printf 'Types: deb-src\nURIs: %s\nSuites: %s\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
    "$MIRROR" "$SUITES" | as_root tee "$SRC_LIST" >/dev/null
as_root apt-get update -qq >&2 || true
cd "$WORK"
if ! apt-get source -d -qq "python3.13=$VERSION" >"$WORK/source.log" 2>&1; then
    echo "free-threaded CPython skipped: the source of python3.13=$VERSION was not found on $MIRROR ($SUITES)" >&2
    exit 3
fi
tarball="$(ls python3.13_"$UPSTREAM".orig.tar.* | head -1)"
tar -xf "$tarball"
cd "Python-$UPSTREAM"
log "configuring (--disable-gil) into $PREFIX"
./configure --disable-gil --prefix="$PREFIX" --with-ensurepip=install >"$WORK/configure.log" 2>&1 \
    || { tail -20 "$WORK/configure.log" >&2; exit 1; }
log "compiling (a few minutes on 2 cores)"
make -j"$(nproc)" >"$WORK/make.log" 2>&1 || { tail -40 "$WORK/make.log" >&2; exit 1; }
make install >"$WORK/install.log" 2>&1 || { tail -40 "$WORK/install.log" >&2; exit 1; }
"$PY" -c 'import sys; assert not sys._is_gil_enabled(), "GIL is enabled"'
log "built $PY"
echo "$PY"
