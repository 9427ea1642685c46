#!/usr/bin/env bash
# `make test-ft`: the test suite on free-threaded CPython 3.13t, with the GIL off.
#
# 1. builds or reuses the interpreter (tools/build-freethreaded-python.sh, cached outside the clone);
# 2. makes .venv-ft with every loomnet dependency that has a free-threaded wheel (the others are
#    listed, and the tests that need them skip with the reason);
# 3. checks that the GIL is still off after importing loomnet and its dependencies;
# 4. runs pytest (extra arguments are passed on) with PYTHON_GIL unset, so an extension that turns
#    the GIL back on is caught rather than overridden.
#
# --setup-only: steps 1-3 only (make bench-ft).
# LOOMNET_FT_OPTIONAL=1 (set by .ci/run): when the interpreter's source cannot be obtained, print
# one line and exit 0 instead of failing.
set -euo pipefail
cd "$(dirname "$0")/.."
unset PYTHON_GIL

set +e
PY="$(bash tools/build-freethreaded-python.sh | tail -1)"
rc=${PIPESTATUS[0]}
set -e
if [[ $rc -eq 3 ]]; then
    # the build script printed the one line saying why
    [[ "${LOOMNET_FT_OPTIONAL:-0}" == 1 ]] && exit 0
    exit 3
elif [[ $rc -ne 0 ]]; then
    exit "$rc"
fi

VENV=.venv-ft
VPY="$VENV/bin/python"
# What `[test]` asks for, by name; each is tried alone, binary wheels only (no source builds).
PACKAGES=(numpy threadpoolctl pytest pytest-timeout hypothesis scikit-learn scipy tqdm matplotlib
          safetensors pandas pyarrow mpi4py mpich onnx onnxruntime skl2onnx)
STAMP="$VENV/.installed-$({ cat pyproject.toml; echo "${PACKAGES[*]}"; } | sha256sum | cut -c1-16)"
if [[ ! -f "$STAMP" ]]; then
    rm -rf "$VENV"
    "$PY" -m venv "$VENV"
    "$VPY" -m pip install --quiet --upgrade pip
    missing=()
    for pkg in "${PACKAGES[@]}"; do
        "$VPY" -m pip install --quiet --only-binary=:all: "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
    done
    "$VPY" -m pip install --quiet --no-deps --no-build-isolation -e . 2>/dev/null \
        || "$VPY" -m pip install --quiet --no-deps -e .
    printf '%s\n' "${missing[@]}" >"$VENV/missing-packages.txt"
    touch "$STAMP"
fi
if [[ -s "$VENV/missing-packages.txt" ]]; then
    echo "test-ft: no free-threaded wheel for: $(paste -sd' ' "$VENV/missing-packages.txt") (their tests skip)"
fi

"$VPY" - <<'PY'
import importlib, pkgutil, sys, sysconfig
assert sysconfig.get_config_var("Py_GIL_DISABLED"), "not a free-threaded interpreter"
import loomnet
for mod in pkgutil.walk_packages(loomnet.__path__, "loomnet."):
    if mod.name.startswith("loomnet.distributed.") or mod.name.endswith("__main__"):
        continue  # MPI modules are imported by the tests that start ranks
    try:
        importlib.import_module(mod.name)
    except ImportError as exc:  # an optional package without a free-threaded wheel
        print(f"test-ft: {mod.name} not importable here: {exc}")
for name in ("numpy", "threadpoolctl", "sklearn", "scipy", "matplotlib", "tqdm", "safetensors", "pandas", "pyarrow",
             "onnx", "onnxruntime", "skl2onnx", "mpi4py"):
    try:
        importlib.import_module(name)
    except ImportError:
        pass
if sys._is_gil_enabled():
    sys.exit("test-ft: the GIL was re-enabled by an import (run with PYTHON_GIL unset; see which module warns)")
print(f"test-ft: {sys.version.split()[0]} free-threaded, GIL off after importing loomnet and its dependencies")
PY

if [[ "${1:-}" == "--setup-only" ]]; then
    exit 0
fi
exec "$VPY" -m pytest -q -p no:cacheprovider "$@"
