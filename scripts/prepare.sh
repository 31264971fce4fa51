# Sourced by the reproduce scripts: set-up (dependencies, data), the AVX-512 OpenBLAS kernels
# where the CPU has them, a Release build of prilo-reconstruct, and matplotlib for the plots
# (Debian's python3-matplotlib). Leaves the shell in the repository root, with $reconstruct,
# $py (a python3 with matplotlib) and wait_all.
#   PRILO_BACKEND=cuda: builds prilo-reconstruct-cuda instead (build-cuda/, -DPRILO_ENABLE_CUDA=ON;
#   needs nvcc) for runs with --backend cuda.
#   PRILO_RECONSTRUCT=<program>: uses that program as it is and installs, fetches and builds
#   nothing (a machine that runs a build made elsewhere, with the data in $PRILO_DATA).
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
backend="${PRILO_BACKEND:-cpu}"
case "$backend" in cpu | cuda) ;; *) echo "prepare: PRILO_BACKEND must be cpu or cuda, not '$backend'" >&2; exit 2 ;; esac
if [ -n "${PRILO_RECONSTRUCT:-}" ]; then
  [ -x "$PRILO_RECONSTRUCT" ] || { echo "prepare: PRILO_RECONSTRUCT=$PRILO_RECONSTRUCT is not an executable" >&2; exit 2; }
  reconstruct="$PRILO_RECONSTRUCT"
else
  bash scripts/setup.sh >/dev/null
fi
source scripts/openblas_env.sh   # AVX-512 kernels where OpenBLAS does not know the CPU
py=python3
if ! $py -c "import matplotlib" 2>/dev/null; then
  py=/usr/bin/python3
  if ! $py -c "import matplotlib" 2>/dev/null && [ -n "${PRILO_RECONSTRUCT:-}" ]; then
    echo "prepare: no python3 with matplotlib (the plots will fail); PRILO_RECONSTRUCT: nothing is installed" >&2
  elif ! $py -c "import matplotlib" 2>/dev/null; then
    echo "prepare: installing python3-matplotlib (for the plots)"
    SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    export DEBIAN_FRONTEND=noninteractive
    for _ in $(seq 60); do fuser /var/lib/dpkg/lock-frontend >/dev/null 2>&1 || break; sleep 5; done
    $SUDO apt-get update -qq
    $SUDO apt-get install -y -qq --no-install-recommends python3-matplotlib >/dev/null
  fi
fi
if [ -z "${PRILO_RECONSTRUCT:-}" ] && [ "$backend" = cuda ]; then
  command -v nvcc >/dev/null || { echo "prepare: PRILO_BACKEND=cuda needs nvcc on PATH" >&2; exit 2; }
  cmake -S . -B build-cuda -DCMAKE_BUILD_TYPE=Release -DPRILO_ENABLE_CUDA=ON >/dev/null
  cmake --build build-cuda -j "$(nproc)" --target prilo-reconstruct-cuda >/dev/null
  reconstruct=./build-cuda/examples/prilo-reconstruct-cuda
elif [ -z "${PRILO_RECONSTRUCT:-}" ]; then
  cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
  cmake --build build -j "$(nproc)" --target prilo-reconstruct >/dev/null
  reconstruct=./build/examples/prilo-reconstruct
fi
mkdir -p docs/results
# waits for every pid given and fails if any of them failed (a bare `wait` would not)
wait_all() {
  local failed=0
  for p in "$@"; do wait "$p" || failed=1; done
  if [ $failed -ne 0 ]; then echo "a run failed: see its log in docs/results/" >&2; return 1; fi
}
