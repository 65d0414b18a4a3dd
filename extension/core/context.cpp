// User context documents; see context.hpp.
#include "core/context.hpp"

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>

namespace zonegate::core {

namespace {

using JsonWriter = rapidjson::Writer<rapidjson::StringBuffer>;

void write_string(JsonWriter& w, std::string_view s) {
  w.String(s.data(), static_cast<rapidjson::SizeType>(s.size()));
}

void write_zone(JsonWriter& w, const ZoneTree& tree, Pos p) {
  w.StartObject();
  w.Key("id");
  w.Int64(tree.id(p));
  w.Key("code");
  write_string(w, tree.code(p));
  w.Key("name");
  write_string(w, tree.name(p));
  w.Key("level");
  write_string(w, tree.level(p));
  w.EndObject();
}

}  // namespace

Scope scope_for(const ZoneTree& tree, const UserRecord& user) {
  return user.sees_all ? Scope::everything(tree) : Scope::from_grants(tree, user.grants);
}

std::string build_context_json(const ZoneTree& tree, const UserRecord& user, const Scope& scope,
                               int64_t cache_version) {
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  w.StartObject();
  w.Key("user_id");
  write_string(w, user.user_id);
  w.Key("email");
  if (user.email)
    write_string(w, *user.email);
  else
    w.Null();
  w.Key("display_name");
  if (user.display_name)
    write_string(w, *user.display_name);
  else
    w.Null();
  w.Key("role");
  write_string(w, user.role);
  w.Key("permissions");
  w.StartArray();
  for (const std::string& p : user.permissions)
    write_string(w, p);
  w.EndArray();
  w.Key("sees_all");
  w.Bool(user.sees_all);
  w.Key("attributes");
  const std::string& attrs =
      user.attributes_json.empty() ? std::string("{}") : user.attributes_json;
  w.RawValue(attrs.data(), attrs.size(), rapidjson::kObjectType);

  std::vector<Pos> grants;
  for (int64_t id : user.grants) {
    Pos p = tree.find(id);
    if (p != kNoPos) grants.push_back(p);
  }
  std::sort(grants.begin(), grants.end(), [&](Pos a, Pos b) { return tree.id(a) < tree.id(b); });
  grants.erase(std::unique(grants.begin(), grants.end()), grants.end());
  w.Key("grants");
  w.StartArray();
  for (Pos p : grants)
    write_zone(w, tree, p);
  w.EndArray();

  std::vector<Pos> regions;
  if (user.sees_all) {
    regions = tree.roots();
  } else {
    for (Pos p : grants)
      regions.push_back(tree.root_of(p));
  }
  std::sort(regions.begin(), regions.end(), [&](Pos a, Pos b) { return tree.id(a) < tree.id(b); });
  regions.erase(std::unique(regions.begin(), regions.end()), regions.end());
  w.Key("regions");
  w.StartArray();
  for (Pos p : regions)
    write_zone(w, tree, p);
  w.EndArray();

  w.Key("visible_zone_count");
  w.Uint64(scope.count());
  w.Key("cache_version");
  w.Int64(cache_version);
  w.EndObject();
  return std::string(buf.GetString(), buf.GetSize());
}

std::optional<std::string> claims_subject(std::string_view claims_json) {
  rapidjson::Document doc;
  doc.Parse<rapidjson::kParseIterativeFlag>(claims_json.data(),
                                            claims_json.size());  // no recursion
  if (doc.HasParseError() || !doc.IsObject()) return std::nullopt;
  auto it = doc.FindMember("sub");
  if (it == doc.MemberEnd() || !it->value.IsString() || it->value.GetStringLength() == 0) {
    return std::nullopt;
  }
  return std::string(it->value.GetString(), it->value.GetStringLength());
}

}  // namespace zonegate::core
