// Reads files under tests/fixtures/.
#ifndef REDMAP_TESTS_TESTLIB_FIXTURES_H_
#define REDMAP_TESTS_TESTLIB_FIXTURES_H_

#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>

namespace redmap::testing {

inline std::string Fixture(const std::string& relative) {
  std::string path = std::string(REDMAP_SOURCE_DIR) + "/tests/fixtures/" + relative;
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("missing fixture " + path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace redmap::testing

#endif  // REDMAP_TESTS_TESTLIB_FIXTURES_H_
