// The user context document: one JSON object with everything a request needs to know about its
// caller, built once per cache miss and then served as stored bytes.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/scope.hpp"
#include "core/zone_tree.hpp"

namespace zonegate::core {

// A users row joined with its role and grants.
struct UserRecord {
  std::string user_id;
  std::optional<std::string> email;
  std::optional<std::string> display_name;
  std::string role;
  bool active = true;
  std::string attributes_json = "{}";  // jsonb text as Postgres prints it
  std::vector<std::string> permissions;
  bool sees_all = false;
  std::vector<int64_t> grants;  // granted zone ids
};

// The user's scope: everything for sees_all roles, the grants' subtrees otherwise.
Scope scope_for(const ZoneTree& tree, const UserRecord& user);

// {"user_id", "email", "display_name", "role", "permissions", "sees_all", "attributes",
//  "grants": [{id, code, name, level}], "regions": [{id, code, name, level}],
//  "visible_zone_count", "cache_version"}. Grants are sorted by id; regions are the top-level
// zones the user reaches (every root for sees_all), sorted by id.
std::string build_context_json(const ZoneTree& tree, const UserRecord& user, const Scope& scope,
                               int64_t cache_version);

// The "sub" claim of a JWT claims document (request.jwt.claims as PostgREST sets it), if it is a
// non-empty string; nullopt for anything else, including malformed JSON.
std::optional<std::string> claims_subject(std::string_view claims_json);

}  // namespace zonegate::core
