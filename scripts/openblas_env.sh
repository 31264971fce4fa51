# Sourced by the project's scripts: lets OpenBLAS use its AVX-512 kernels on CPUs newer than
# the OpenBLAS build. Debian's OpenBLAS 0.3.21 does not know AMD Zen 5 (family 26) and falls
# back to its Haswell (AVX2) kernels: 98 GFLOP/s in the decoder's products on the 2-core VM of
# benchmarks/README.md, against 189 GFLOP/s with the SkylakeX kernels. OpenBLAS reads
# OPENBLAS_CORETYPE when it is loaded, so it must be in the environment before a program
# starts. Set only where the CPU has every AVX-512 subset those kernels use. It replaces an
# inherited OPENBLAS_CORETYPE (the VMs used here export Haswell machine-wide); export
# PRILO_KEEP_OPENBLAS_CORETYPE=1 to keep yours.
if [ -z "${PRILO_KEEP_OPENBLAS_CORETYPE:-}" ] && [ -r /proc/cpuinfo ]; then
  _prilo_flags="$(grep -m1 '^flags' /proc/cpuinfo)"
  _prilo_ok=1
  for _f in avx512f avx512cd avx512bw avx512dq avx512vl; do
    case " $_prilo_flags " in *" $_f "*) ;; *) _prilo_ok=0 ;; esac
  done
  [ "$_prilo_ok" = 1 ] && export OPENBLAS_CORETYPE=SkylakeX
  unset _prilo_flags _prilo_ok _f
fi
