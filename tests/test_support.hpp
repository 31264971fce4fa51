// Helpers every test file may use: where the data sets are, and the message of the error a
// call throws.
#pragma once

#include <cstdlib>
#include <exception>
#include <string>

namespace prilo::test_support {

/// $PRILO_DATA if set, else the source tree's data/ (not the working directory's, as
/// io::default_data_dir has it: CTest runs the tests from the build tree). A missing file
/// there is io's file_error, which says how to fetch the data sets.
inline std::string data_dir() {
  if (const char* e = std::getenv("PRILO_DATA"); e && *e) return e;
  return std::string(PRILO_SOURCE_DIR) + "/data";
}

/// The message of the exception of type E that f() throws, or "(no error)" when it returns;
/// an exception of another type propagates, so that the test reports it.
template <class E = std::exception, class F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const E& e) {
    return e.what();
  }
  return "(no error)";
}

}  // namespace prilo::test_support
