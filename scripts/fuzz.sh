#!/usr/bin/env bash
# Builds the libFuzzer harnesses (fuzz/fuzz_<name>.cpp, clang with
# -fsanitize=fuzzer,address,undefined) and runs each for a given time. Fails (exit 1) on any
# finding: a crash, an ASan/UBSan report, an escaping exception other than
# prilo::invalid_input / prilo::file_error, a broken invariant, a timeout, a leak, or an
# allocation above the memory limits. docs/fuzzing.md has the details.
#
#   bash scripts/fuzz.sh [seconds-per-harness] [harness...]   (default: 60 s, every harness)
#   bash scripts/fuzz.sh --build-only                          (build, then stop)
#   bash scripts/fuzz.sh --seeds                               (rewrite fuzz/corpus from the library's writers)
#
# Harnesses: idx idx_gz weights vae config. Environment:
#   CXX                clang++ (default clang++)
#   PRILO_FUZZ_BUILD   build and working folder (default build-fuzz/): binaries, the growing
#                      corpus (<build>/corpus/<harness>), findings (<build>/artifacts/<harness>),
#                      logs (<build>/logs/<harness>.log). The committed seeds in fuzz/corpus are
#                      read, never written.
#   PRILO_FUZZ_JOBS    harnesses run at once (default 1)
#   PRILO_FUZZ_FORK    1: libFuzzer's fork mode, which keeps going after a finding and collects
#                      every one (the long runs of docs/fuzzing.md); default 0: stop at the first
#   PRILO_FUZZ_NICE    niceness of the fuzzing processes (default 19)
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"

all_harnesses=(idx idx_gz weights vae config)
cxx="${CXX:-clang++}"
build="${PRILO_FUZZ_BUILD:-$repo/build-fuzz}"
jobs="${PRILO_FUZZ_JOBS:-1}"
fork="${PRILO_FUZZ_FORK:-0}"
niceness="${PRILO_FUZZ_NICE:-19}"

mode=run
seconds=60
harnesses=()
for a in "$@"; do
  case "$a" in
    --build-only) mode=build ;;
    --seeds) mode=seeds ;;
    -h|--help) sed -n '2,24p' "$0"; exit 0 ;;
    *[!0-9]*) harnesses+=("$a") ;;
    *) seconds="$a" ;;
  esac
done
[ ${#harnesses[@]} -eq 0 ] && harnesses=("${all_harnesses[@]}")
for h in "${harnesses[@]}"; do
  [ -f "fuzz/fuzz_$h.cpp" ] || { echo "fuzz.sh: unknown harness '$h' (known: ${all_harnesses[*]})" >&2; exit 2; }
done

if ! "$cxx" --version 2>/dev/null | grep -q clang; then
  echo "fuzz.sh: libFuzzer needs clang; CXX=$cxx is not clang (Debian: apt-get install clang)" >&2
  exit 2
fi
eigen_flags="$(pkg-config --cflags eigen3 2>/dev/null || echo -I/usr/include/eigen3)"
common=(-std=c++20 -g -O1 -fno-omit-frame-pointer -Iinclude $eigen_flags -DEIGEN_DONT_PARALLELIZE)
libs=(-lz -lfftw3 -lfftw3f)
mkdir -p "$build"

if [ "$mode" = seeds ]; then
  "$cxx" "${common[@]}" -fsanitize=address,undefined fuzz/make_seeds.cpp -o "$build/make_seeds" "${libs[@]}"
  rm -rf fuzz/corpus
  "$build/make_seeds" fuzz/corpus configs
  exit 0
fi

echo "== building ${harnesses[*]} with $cxx =="
pids=()
for h in "${harnesses[@]}"; do
  # rebuild only when the harness, fuzz/targets.hpp or a library header is newer than the binary
  if [ -x "$build/fuzz_$h" ] && [ -z "$(find include fuzz/targets.hpp "fuzz/fuzz_$h.cpp" -newer "$build/fuzz_$h" -print -quit)" ]; then
    continue
  fi
  "$cxx" "${common[@]}" -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
         "fuzz/fuzz_$h.cpp" -o "$build/fuzz_$h" "${libs[@]}" &
  pids+=($!)
  if [ ${#pids[@]} -ge 2 ]; then wait "${pids[0]}"; pids=("${pids[@]:1}"); fi
done
for p in "${pids[@]}"; do wait "$p"; done
[ "$mode" = build ] && exit 0

export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:allocator_may_return_null=0}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
flags=(-timeout=10 -rss_limit_mb=2048 -malloc_limit_mb=2048 -print_final_stats=1)

# One harness: the committed regression inputs once (fuzz/regressions/<h>, except the open
# findings listed in fuzz/regressions/open.txt), then fuzzing for $seconds.
run_one() {
  local h="$1" bin="$build/fuzz_$h" log="$build/logs/$h.log"
  local art="$build/artifacts/$h/" corpus="$build/corpus/$h"
  rm -rf "$art" && mkdir -p "$art" "$corpus" "$build/logs"
  local dict=() extra=()
  [ -f "fuzz/$h.dict" ] && dict=(-dict="fuzz/$h.dict")
  [ "$fork" = 1 ] && extra=(-fork=1 -ignore_crashes=1 -ignore_ooms=1 -ignore_timeouts=1)
  local regs=()
  if [ -d "fuzz/regressions/$h" ]; then
    while IFS= read -r f; do
      grep -qxF "$h/$(basename "$f")" <(cut -d' ' -f1 fuzz/regressions/open.txt 2>/dev/null) || regs+=("$f")
    done < <(find "fuzz/regressions/$h" -type f | sort)
  fi
  local rc=0
  {
    if [ ${#regs[@]} -gt 0 ]; then
      nice -n "$niceness" "$bin" "${flags[@]}" -artifact_prefix="${art}regression-" "${regs[@]}" || rc=$?
    fi
    nice -n "$niceness" "$bin" "${flags[@]}" "${dict[@]}" "${extra[@]}" -max_total_time="$seconds" \
         -artifact_prefix="$art" "$corpus" "fuzz/corpus/$h" || rc=$?
  } >"$log" 2>&1
  local findings execs
  findings=$(find "$art" -type f | wc -l)
  execs=$(grep -o 'exec/s:\? [0-9]*' "$log" | tail -1 | grep -o '[0-9]*' || true)
  printf '%-8s %4ss  exit %-3s  exec/s %-7s  corpus %5s files  findings %s\n' "$h" "$seconds" "$rc" \
         "${execs:-?}" "$(find "$corpus" -type f | wc -l)" "$findings"
  if [ "$rc" -ne 0 ] || [ "$findings" -ne 0 ]; then
    echo "   FINDING: see $log and $art" >&2
    grep -v '^#' "$log" | grep -m4 -E '^==[0-9]+== ?ERROR|^SUMMARY|runtime error|fuzz invariant|terminate called' \
      | sed 's/^/   /' >&2 || true
    return 1
  fi
}

echo "== fuzzing ${harnesses[*]}: ${seconds} s each, ${jobs} at a time =="
failed=0
running=()
for h in "${harnesses[@]}"; do
  run_one "$h" &
  running+=($!)
  if [ ${#running[@]} -ge "$jobs" ]; then
    wait "${running[0]}" || failed=1
    running=("${running[@]:1}")
  fi
done
for p in "${running[@]}"; do wait "$p" || failed=1; done
if [ $failed -ne 0 ]; then
  echo "fuzz.sh: FAILED: at least one harness found a problem" >&2
  exit 1
fi
echo "fuzz.sh: no findings"
