// JSPath claim paths; see claim_path.hpp.
#include "auth/claim_path.hpp"

#include <cctype>

namespace zonegate::auth {

namespace {

// The characters of an unquoted key (PostgREST's: alphanumerics and _ $ @, plus '-', common in
// claim names such as "x-hasura-role").
bool key_char(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '_' || c == '$' || c == '@' ||
         c == '-';
}

}  // namespace

std::string parse_claim_path(std::string_view text, ClaimPath& out) {
  out.clear();
  size_t i = 0;
  while (i < text.size()) {
    ClaimStep step;
    if (text[i] == '.') {
      ++i;
      if (i < text.size() && text[i] == '"') {
        ++i;
        bool closed = false;
        while (i < text.size()) {
          char c = text[i++];
          if (c == '"') {
            closed = true;
            break;
          }
          if (c == '\\') {
            if (i >= text.size()) break;
            c = text[i++];
          }
          step.key += c;
        }
        if (!closed) return "a quoted name is not closed";
      } else {
        while (i < text.size() && key_char(text[i]))
          step.key += text[i++];
      }
      if (step.key.empty()) return "a name is missing after '.' at byte " + std::to_string(i);
    } else if (text[i] == '[') {
      ++i;
      size_t start = i;
      while (i < text.size() && std::isdigit(static_cast<unsigned char>(text[i])) != 0)
        ++i;
      if (i == start || i - start > 6 || i >= text.size() || text[i] != ']') {
        return "an index must be [n] with n a number of at most 6 digits";
      }
      step.is_index = true;
      step.index = std::stoul(std::string(text.substr(start, i - start)));
      ++i;
    } else {
      return std::string("unexpected '") + text[i] + "' at byte " + std::to_string(i) +
             ": each step is .name, .\"name\" or [n]";
    }
    out.push_back(std::move(step));
  }
  if (out.empty()) return "the path is empty: write it as .role or .app_metadata.role";
  return "";
}

ClaimPath member_path(const std::string& name) {
  ClaimStep step;
  step.key = name;
  return {step};
}

const rapidjson::Value* walk_claim_path(const rapidjson::Value& root, const ClaimPath& path) {
  const rapidjson::Value* v = &root;
  for (const ClaimStep& s : path) {
    if (s.is_index) {
      if (!v->IsArray() || s.index >= v->Size()) return nullptr;
      v = &(*v)[static_cast<rapidjson::SizeType>(s.index)];
    } else {
      if (!v->IsObject()) return nullptr;
      auto m =
          v->FindMember(rapidjson::Value(rapidjson::StringRef(s.key.data(), s.key.size())).Move());
      if (m == v->MemberEnd()) return nullptr;
      v = &m->value;
    }
  }
  return v;
}

std::string claim_path_text(const ClaimPath& path) {
  std::string out;
  for (const ClaimStep& s : path) {
    if (s.is_index) {
      out += "[" + std::to_string(s.index) + "]";
      continue;
    }
    bool plain = !s.key.empty();
    for (char c : s.key)
      plain = plain && key_char(c);
    if (plain) {
      out += "." + s.key;
      continue;
    }
    out += ".\"";
    for (char c : s.key) {
      if (c == '"' || c == '\\') out += '\\';
      out += c;
    }
    out += '"';
  }
  return out;
}

}  // namespace zonegate::auth
