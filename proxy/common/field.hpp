// A name and a value: an HTTP header field, and the same in the response cache's answers, so an
// answer's fields move between the two layers without a copy.
#pragma once

#include <string>

namespace zonegate {

struct Field {
  std::string name;  // lower-cased on parse (requests); as written (responses)
  std::string value;
};

}  // namespace zonegate
