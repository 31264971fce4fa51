// libFuzzer harness "idx_gz": see fuzz/targets.hpp and docs/fuzzing.md.
#include "targets.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  prilo_fuzz::idx_gz(data, size);
  return 0;
}
