#!/usr/bin/env bash
# The C++ sources follow .clang-format: checks every tracked C++ file with clang-format-14
# (Debian bookworm's), and with --fix rewrites them in place.
#   bash scripts/check_format.sh [--fix]
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
fmt="$(command -v clang-format-14 || command -v clang-format || true)"
[ -n "$fmt" ] || { echo "check_format: clang-format-14 not found (bash scripts/setup.sh installs it)" >&2; exit 1; }
mapfile -t files < <(git ls-files '*.hpp' '*.cpp' '*.cuh' '*.cu' '*.h' | grep -v '^fuzz/corpus/')
if [ "${1:-}" = "--fix" ]; then
  "$fmt" -i "${files[@]}"
  echo "check_format: formatted ${#files[@]} files"
else
  "$fmt" --dry-run --Werror "${files[@]}" || { echo "check_format: run 'bash scripts/check_format.sh --fix'" >&2; exit 1; }
  echo "check_format: ${#files[@]} files follow .clang-format"
fi
