// The one error type of zonegate's pure C++ code. It carries a SQLSTATE so the Postgres boundary
// (extension/pg/guard.cpp) and the proxy's error mapping report it with the right class.
#pragma once

#include <stdexcept>
#include <string>

namespace zonegate {

// Well-known SQLSTATEs used by the core. Five characters, as in the SQL standard.
namespace sqlstate {
inline constexpr const char* kInvalidParameterValue = "22023";
inline constexpr const char* kDataException = "22000";
inline constexpr const char* kInvalidTextRepresentation = "22P02";
inline constexpr const char* kForeignKeyViolation = "23503";
inline constexpr const char* kCheckViolation = "23514";
inline constexpr const char* kInternalError = "XX000";
}  // namespace sqlstate

class Error : public std::runtime_error {
 public:
  Error(const char* sqlstate, const std::string& message, std::string detail = {},
        std::string hint = {})
      : std::runtime_error(message),
        sqlstate_(sqlstate),
        detail_(std::move(detail)),
        hint_(std::move(hint)) {}

  const char* sqlstate() const noexcept { return sqlstate_; }
  const std::string& detail() const noexcept { return detail_; }
  const std::string& hint() const noexcept { return hint_; }

 private:
  const char* sqlstate_;
  std::string detail_;
  std::string hint_;
};

}  // namespace zonegate
