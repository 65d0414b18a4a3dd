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
  std::string attributes_json = "{}";  // jsonb text as Postgres prints it (for JSON text)
  std::string attributes_jsonb;        // the same as jsonb varlena bytes (for jsonb); may be empty
  std::vector<std::string> permissions;
  bool sees_all = false;
  std::vector<int64_t> grants;  // granted zone ids
};

// The user's scope: everything for sees_all roles, the grants' subtrees otherwise.
Scope scope_for(const ZoneTree& tree, const UserRecord& user);

// One step of a JSON document. The context's shape is written once, as these tokens
// (context_document); render_json makes JSON text of them and the Postgres layer jsonb, without
// printing text only to parse it again (jsonb_in was a third of a cache miss).
struct DocToken {
  enum Kind : uint8_t {
    kBeginObject,
    kEndObject,
    kBeginArray,
    kEndArray,
    kKey,     // text
    kString,  // text
    kNull,
    kBool,        // number: 0 or 1
    kInt,         // number
    kAttributes,  // the user's attributes object (UserRecord::attributes_json / _jsonb)
  };
  Kind kind;
  std::string_view text;
  int64_t number = 0;
};
using Document = std::vector<DocToken>;

// {"user_id", "email", "display_name", "role", "permissions", "sees_all", "attributes",
//  "grants": [{id, code, name, level}], "regions": [{id, code, name, level}],
//  "visible_zone_count", "cache_version"}. Grants are sorted by id; regions are the top-level
// zones the user reaches (every root for sees_all), sorted by id. The tokens' text points into
// `tree` and `user`: both must outlive the document.
Document context_document(const ZoneTree& tree, const UserRecord& user, const Scope& scope,
                          int64_t cache_version);

// The document as compact JSON text, keys in document order; kAttributes is written as
// `attributes_json` verbatim ("{}" when empty).
std::string render_json(const Document& doc, std::string_view attributes_json);

// render_json(context_document(...), user.attributes_json).
std::string build_context_json(const ZoneTree& tree, const UserRecord& user, const Scope& scope,
                               int64_t cache_version);

// The "sub" claim of a JWT claims document (request.jwt.claims as PostgREST sets it), if it is a
// non-empty string; nullopt when it is absent, empty or not a string (an anonymous request).
// Throws zonegate::Error (22023) for claims that name nobody unambiguously: not a JSON object,
// "sub" twice (jsonb would read the last, a first-match reader the first), or a NUL in "sub"
// (a C string would end there and read another user).
std::optional<std::string> claims_subject(std::string_view claims_json);

}  // namespace zonegate::core
