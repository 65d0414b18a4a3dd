// User context documents; see context.hpp.
#include "core/context.hpp"

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>

#include "core/error.hpp"

namespace zonegate::core {

namespace {

// Appends tokens to a document; keeps context_document() reading like the JSON it makes.
class DocBuilder {
 public:
  explicit DocBuilder(Document& doc) : doc_(doc) {}
  void begin_object() { doc_.push_back({DocToken::kBeginObject, {}, 0}); }
  void end_object() { doc_.push_back({DocToken::kEndObject, {}, 0}); }
  void begin_array() { doc_.push_back({DocToken::kBeginArray, {}, 0}); }
  void end_array() { doc_.push_back({DocToken::kEndArray, {}, 0}); }
  void key(std::string_view k) { doc_.push_back({DocToken::kKey, k, 0}); }
  void string(std::string_view v) { doc_.push_back({DocToken::kString, v, 0}); }
  void optional_string(const std::optional<std::string>& v) {
    if (v)
      string(*v);
    else
      doc_.push_back({DocToken::kNull, {}, 0});
  }
  void boolean(bool v) { doc_.push_back({DocToken::kBool, {}, v ? 1 : 0}); }
  void integer(int64_t v) { doc_.push_back({DocToken::kInt, {}, v}); }
  void attributes() { doc_.push_back({DocToken::kAttributes, {}, 0}); }

  void zone(const ZoneTree& tree, Pos p) {
    begin_object();
    key("id");
    integer(tree.id(p));
    key("code");
    string(tree.code(p));
    key("name");
    string(tree.name(p));
    key("level");
    string(tree.level(p));
    end_object();
  }

 private:
  Document& doc_;
};

// Zones sorted by id, without repeats.
void sort_by_id(const ZoneTree& tree, std::vector<Pos>& zones) {
  std::sort(zones.begin(), zones.end(), [&](Pos a, Pos b) { return tree.id(a) < tree.id(b); });
  zones.erase(std::unique(zones.begin(), zones.end()), zones.end());
}

}  // namespace

Scope scope_for(const ZoneTree& tree, const UserRecord& user) {
  return user.sees_all ? Scope::everything(tree) : Scope::from_grants(tree, user.grants);
}

Document context_document(const ZoneTree& tree, const UserRecord& user, const Scope& scope,
                          int64_t cache_version) {
  std::vector<Pos> grants;
  for (int64_t id : user.grants) {
    Pos p = tree.find(id);
    if (p != kNoPos) grants.push_back(p);
  }
  sort_by_id(tree, grants);
  std::vector<Pos> regions;
  if (user.sees_all) {
    regions = tree.roots();
  } else {
    for (Pos p : grants)
      regions.push_back(tree.root_of(p));
  }
  sort_by_id(tree, regions);

  Document doc;
  doc.reserve(32 + user.permissions.size() + 10 * (grants.size() + regions.size()));
  DocBuilder b(doc);
  b.begin_object();
  b.key("user_id");
  b.string(user.user_id);
  b.key("email");
  b.optional_string(user.email);
  b.key("display_name");
  b.optional_string(user.display_name);
  b.key("role");
  b.string(user.role);
  b.key("permissions");
  b.begin_array();
  for (const std::string& p : user.permissions)
    b.string(p);
  b.end_array();
  b.key("sees_all");
  b.boolean(user.sees_all);
  b.key("attributes");
  b.attributes();
  b.key("grants");
  b.begin_array();
  for (Pos p : grants)
    b.zone(tree, p);
  b.end_array();
  b.key("regions");
  b.begin_array();
  for (Pos p : regions)
    b.zone(tree, p);
  b.end_array();
  b.key("visible_zone_count");
  b.integer(static_cast<int64_t>(scope.count()));
  b.key("cache_version");
  b.integer(cache_version);
  b.end_object();
  return doc;
}

std::string render_json(const Document& doc, std::string_view attributes_json) {
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  auto size = [](std::string_view s) { return static_cast<rapidjson::SizeType>(s.size()); };
  for (const DocToken& t : doc) {
    switch (t.kind) {
      case DocToken::kBeginObject:
        w.StartObject();
        break;
      case DocToken::kEndObject:
        w.EndObject();
        break;
      case DocToken::kBeginArray:
        w.StartArray();
        break;
      case DocToken::kEndArray:
        w.EndArray();
        break;
      case DocToken::kKey:
        w.Key(t.text.data(), size(t.text));
        break;
      case DocToken::kString:
        w.String(t.text.data(), size(t.text));
        break;
      case DocToken::kNull:
        w.Null();
        break;
      case DocToken::kBool:
        w.Bool(t.number != 0);
        break;
      case DocToken::kInt:
        w.Int64(t.number);
        break;
      case DocToken::kAttributes: {
        std::string_view a = attributes_json.empty() ? std::string_view("{}") : attributes_json;
        w.RawValue(a.data(), a.size(), rapidjson::kObjectType);
        break;
      }
    }
  }
  return std::string(buf.GetString(), buf.GetSize());
}

std::string build_context_json(const ZoneTree& tree, const UserRecord& user, const Scope& scope,
                               int64_t cache_version) {
  return render_json(context_document(tree, user, scope, cache_version), user.attributes_json);
}

std::optional<std::string> claims_subject(std::string_view claims_json) {
  rapidjson::Document doc;
  doc.Parse<rapidjson::kParseIterativeFlag>(claims_json.data(),
                                            claims_json.size());  // no recursion
  if (doc.HasParseError() || !doc.IsObject()) {
    throw Error(sqlstate::kInvalidParameterValue, "request.jwt.claims is not a JSON object", {},
                "set it to the JWT's claims, as PostgREST does");
  }
  const rapidjson::Value* sub = nullptr;
  for (auto it = doc.MemberBegin(); it != doc.MemberEnd(); ++it) {
    if (std::string_view(it->name.GetString(), it->name.GetStringLength()) != "sub") continue;
    if (sub != nullptr) {
      throw Error(sqlstate::kInvalidParameterValue,
                  "request.jwt.claims has more than one \"sub\" claim");
    }
    sub = &it->value;
  }
  if (sub == nullptr || !sub->IsString() || sub->GetStringLength() == 0) return std::nullopt;
  std::string out(sub->GetString(), sub->GetStringLength());
  if (out.find('\0') != std::string::npos) {
    throw Error(sqlstate::kInvalidParameterValue,
                "the \"sub\" claim of request.jwt.claims contains a NUL character");
  }
  return out;
}

}  // namespace zonegate::core
