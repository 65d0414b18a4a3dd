// The message of an errno value, safe to call from any thread: std::strerror may format unknown
// values into one buffer shared by every thread, strerror_r does not.
#pragma once

#include <cstring>
#include <string>

namespace zonegate {

inline std::string errno_text(int err) {
  char buf[128];
  // The GNU strerror_r (glibc, _GNU_SOURCE, which g++ and clang++ define): it returns the
  // message, either in buf or a static string of its own.
  return strerror_r(err, buf, sizeof buf);
}

}  // namespace zonegate
