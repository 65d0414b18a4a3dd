// Where in a token's claims a value is: PostgREST's JSPath for jwt-role-claim-key (".role",
// ".app_metadata.role", ".\"https://x/roles\"[0]"), parsed once from the configuration and
// walked over each verified payload. No database or event-loop types: unit-tested.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include <rapidjson/document.h>

namespace zonegate::auth {

// One step: a member of an object, or an element of an array.
struct ClaimStep {
  bool is_index = false;
  std::string key;   // when !is_index
  size_t index = 0;  // when is_index
};

using ClaimPath = std::vector<ClaimStep>;

// Parses a JSPath: steps of `.name` (letters, digits, _ $ @ -), `."any name"` (\" and \\ escape
// inside the quotes) or `[n]`, at least one. Returns "" or what is wrong.
std::string parse_claim_path(std::string_view text, ClaimPath& out);

// The path of one top-level member (auth.jwt.role_claim, whatever its characters).
ClaimPath member_path(const std::string& name);

// The value at `path` in `root`, or nullptr when a step is missing or of the wrong kind.
const rapidjson::Value* walk_claim_path(const rapidjson::Value& root, const ClaimPath& path);

// The path as written in the configuration, for messages.
std::string claim_path_text(const ClaimPath& path);

}  // namespace zonegate::auth
