# Warning flags for the project's own targets (never forced on consumers).
add_library(prilo_warnings INTERFACE)
target_compile_options(prilo_warnings INTERFACE
  $<$<COMPILE_LANGUAGE:CXX>:-Wall -Wextra -Wpedantic>
  # GCC 12 reports false -W(maybe-)uninitialized warnings inside its own AVX-512 intrinsics
  # when Eigen is built with -march=native on AVX-512 machines.
  $<$<AND:$<COMPILE_LANGUAGE:CXX>,$<CXX_COMPILER_ID:GNU>>:-Wno-maybe-uninitialized -Wno-uninitialized>)
# Warnings as errors on the project's own targets: scripts/test.sh (and so CI) turns it on.
if(PRILO_WERROR)
  target_compile_options(prilo_warnings INTERFACE $<$<COMPILE_LANGUAGE:CXX>:-Werror>)
endif()
