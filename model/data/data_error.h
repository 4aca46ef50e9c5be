// DataError: the one exception of smx_data for input that cannot be read
// (a missing file or folder, a malformed line); what() names the file, the
// line where there is one, and what was expected.
#pragma once

#include <stdexcept>

namespace smx::data {

/// Unreadable or malformed input data; what() names the path and, where it applies, the line.
class DataError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

}  // namespace smx::data
