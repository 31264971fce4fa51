# Sourced by the reproduce scripts: set-up (dependencies, data), the AVX-512 OpenBLAS kernels
# where the CPU has them, a Release build of prilo-reconstruct, and matplotlib for the plots
# (Debian's python3-matplotlib). Leaves the shell in the repository root.
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
bash scripts/setup.sh >/dev/null
source scripts/openblas_env.sh   # AVX-512 kernels where OpenBLAS does not know the CPU
# the plots: a python3 with matplotlib ($py), Debian's where the first python3 on PATH has none
py=python3
if ! $py -c "import matplotlib" 2>/dev/null; then
  py=/usr/bin/python3
  if ! $py -c "import matplotlib" 2>/dev/null; then
    echo "prepare: installing python3-matplotlib (for the plots)"
    SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends python3-matplotlib >/dev/null
  fi
fi
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j "$(nproc)" --target prilo-reconstruct >/dev/null
mkdir -p docs/results
reconstruct=./build/examples/prilo-reconstruct
