#!/usr/bin/env bash
# Packs what a GPU machine without prilo's build dependencies needs to run the CUDA checks
# (scripts/cuda_checks.sh): the CUDA programs of a build (prilo_cuda_tests, prilo_cuda_bench,
# prilo-reconstruct-cuda, stripped), the shared libraries such a machine may lack (FFTW,
# libgomp, Google Benchmark; the CUDA libraries are the GPU machine's own), and the first N
# test images of MNIST and Fashion-MNIST as gzip'd IDX files, in one xz archive plus the
# images. This is how docs/cuda.md's figures were taken: built on the 2-core VM, run on an H200.
#   usage: scripts/cuda_bundle.sh BUILD_DIR OUT_DIR [N (default 1024)]
#   BUILD_DIR: a build configured with -DPRILO_ENABLE_CUDA=ON -DPRILO_BUILD_BENCHMARKS=ON, e.g.
#     cmake -S . -B build-cuda -DCMAKE_BUILD_TYPE=Release -DPRILO_ENABLE_CUDA=ON \
#       -DPRILO_BUILD_BENCHMARKS=ON -DPRILO_NATIVE=OFF -DCMAKE_CUDA_FLAGS=-Xcompiler=-march=x86-64-v4
#   (PRILO_NATIVE=OFF and an explicit -march: the programs must run on the other machine's CPU.)
set -euo pipefail
[ $# -ge 2 ] || { echo "usage: $0 BUILD_DIR OUT_DIR [N]" >&2; exit 2; }
build="$1"; out="$2"; count="${3:-1024}"
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
data="${PRILO_DATA:-$repo/data}"
[[ "$count" =~ ^[1-9][0-9]*$ ]] || { echo "cuda_bundle: N must be a positive integer, not '$count'" >&2; exit 2; }
cmake --build "$build" -j "$(nproc)" --target prilo_cuda_tests prilo_cuda_bench prilo-reconstruct-cuda >/dev/null
stage="$(mktemp -d)"; trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage/bin" "$stage/lib" "$out"
cp "$build/tests/cuda/prilo_cuda_tests" "$build/benchmarks/cuda/prilo_cuda_bench" \
   "$build/examples/prilo-reconstruct-cuda" "$stage/bin/"
strip "$stage/bin/"*
# the non-system, non-CUDA libraries the programs load (resolved here; copied as files)
for lib in $(ldd "$stage/bin/"* | awk '/=>/ {print $3}' | sort -u); do
  case "$(basename "$lib")" in
    libfftw3*|libgomp*|libbenchmark*) cp -L "$lib" "$stage/lib/" ;;
  esac
done
tar -C "$stage" -cJf "$out/bin.tar.xz" bin lib
# the first N test images and labels of each data set, as valid IDX files (header count N)
python3 - "$data" "$out/data" "$count" <<'PY'
import gzip, os, struct, sys
src, dst, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
for ds in ("mnist", "fashion-mnist"):
    os.makedirs(os.path.join(dst, ds), exist_ok=True)
    for name in ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):
        path = os.path.join(src, ds, name)
        raw = open(path, "rb").read() if os.path.exists(path) else gzip.open(path + ".gz", "rb").read()
        magic, total = struct.unpack(">II", raw[:8])
        ndim = magic & 0xFF
        dims = struct.unpack(">" + "I" * ndim, raw[4:4 + 4 * ndim])
        if n > total:
            sys.exit(f"cuda_bundle: {path} holds {total} items, fewer than {n}")
        per = 1
        for d in dims[1:]:
            per *= d
        head = struct.pack(">I", magic) + struct.pack(">" + "I" * ndim, n, *dims[1:])
        body = raw[4 + 4 * ndim:4 + 4 * ndim + n * per]
        with gzip.open(os.path.join(dst, ds, name + ".gz"), "wb", 9) as f:
            f.write(head + body)
PY
echo "$count" > "$out/images"
echo "cuda_bundle: $out: $(du -sh "$out" | cut -f1) ($(ls "$stage/bin" | tr '\n' ' ')+ $(ls "$stage/lib" | tr '\n' ' ')+ $count images per data set)"
