// The fuzzers' findings as regression tests: every input under fuzz/regressions/<harness>/
// (and every seed under fuzz/corpus/<harness>/) goes through the same entry point as the
// libFuzzer harness (fuzz/targets.hpp), which must succeed or reject it with
// prilo::invalid_input / prilo::file_error. Inputs listed in fuzz/regressions/open.txt are
// findings in headers not fixed yet: they are skipped here and run by the test case
// "fuzz regressions: open findings" (skipped by default; run with --no-skip once fixed, then
// remove the line from open.txt). docs/fuzzing.md.
#include <doctest/doctest.h>

#include "../fuzz/targets.hpp"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#ifndef PRILO_SOURCE_DIR
#define PRILO_SOURCE_DIR "."
#endif

// Each test file in its own namespace, so that unity builds can combine them (tests/CMakeLists.txt).
namespace prilo_test_fuzz_regressions {

namespace {

namespace fs = std::filesystem;

const fs::path fuzz_root = fs::path(PRILO_SOURCE_DIR) / "fuzz";

/// "<harness>/<file>" of every open finding (first word of each non-comment line of open.txt).
std::set<std::string> open_findings() {
  std::set<std::string> out;
  std::ifstream in(fuzz_root / "regressions" / "open.txt");
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream words(line);
    std::string first;
    if (words >> first && first[0] != '#') out.insert(first);
  }
  return out;
}

std::vector<unsigned char> read_bytes(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

/// Feeds every file under fuzz/<folder>/<harness>/ to the harness's target; `open` selects
/// the open findings (true) or everything else (false). Returns the number of files fed.
int feed(const std::string& folder, bool open) {
  const auto open_set = open_findings();
  int fed = 0;
  for (const auto& t : prilo_fuzz::targets) {
    const fs::path dir = fuzz_root / folder / t.name;
    if (!fs::is_directory(dir)) continue;
    std::vector<fs::path> files;
    for (const auto& e : fs::recursive_directory_iterator(dir))
      if (e.is_regular_file()) files.push_back(e.path());
    std::sort(files.begin(), files.end());
    for (const auto& f : files) {
      const bool is_open = open_set.count(std::string(t.name) + "/" + f.filename().string()) > 0;
      if (folder == "regressions" && is_open != open) continue;
      const auto bytes = read_bytes(f);
      INFO("harness ", std::string(t.name), ", input ", f.string(), " (", bytes.size(), " bytes)");
      CHECK_NOTHROW(t.run(bytes.data(), bytes.size()));
      ++fed;
    }
  }
  return fed;
}

}  // namespace

TEST_CASE("fuzz regressions: every kept crashing input is read or cleanly rejected") {
  REQUIRE(fs::is_directory(fuzz_root / "regressions"));
  CHECK(feed("regressions", false) > 0);
}

TEST_CASE("fuzz seeds: every seed of the corpus is read or cleanly rejected") {
  CHECK(feed("corpus", false) >= 10);
}

TEST_CASE("fuzz regressions: open findings" * doctest::skip()) {
  CHECK(feed("regressions", true) > 0);
}

}  // namespace prilo_test_fuzz_regressions
