# Sourced by the reproduce scripts: set-up (dependencies, data), the AVX-512 OpenBLAS kernels
# where the CPU has them, a Release build of prilo-reconstruct, and matplotlib for the plots
# (Debian's python3-matplotlib). Leaves the shell in the repository root, with $reconstruct,
# $py (a python3 with matplotlib) and wait_all.
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
bash scripts/setup.sh >/dev/null
source scripts/openblas_env.sh   # AVX-512 kernels where OpenBLAS does not know the CPU
py=python3
if ! $py -c "import matplotlib" 2>/dev/null; then
  py=/usr/bin/python3
  if ! $py -c "import matplotlib" 2>/dev/null; then
    echo "prepare: installing python3-matplotlib (for the plots)"
    SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    export DEBIAN_FRONTEND=noninteractive
    for _ in $(seq 60); do fuser /var/lib/dpkg/lock-frontend >/dev/null 2>&1 || break; sleep 5; done
    $SUDO apt-get update -qq
    $SUDO apt-get install -y -qq --no-install-recommends python3-matplotlib >/dev/null
  fi
fi
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j "$(nproc)" --target prilo-reconstruct >/dev/null
mkdir -p docs/results
reconstruct=./build/examples/prilo-reconstruct
# waits for every pid given and fails if any of them failed (a bare `wait` would not)
wait_all() {
  local failed=0
  for p in "$@"; do wait "$p" || failed=1; done
  if [ $failed -ne 0 ]; then echo "a run failed: see its log in docs/results/" >&2; return 1; fi
}
