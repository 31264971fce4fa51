// libFuzzer harness "vae": see fuzz/targets.hpp and docs/fuzzing.md.
#include "targets.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  prilo_fuzz::vae(data, size);
  return 0;
}
