// /rpc's read side; see rpc_query.hpp. The grammar follows PostgREST 12's query-parameter parser
// (src/PostgREST/ApiRequest/QueryParams.hs) and the SQL its query builder writes for a function
// (src/PostgREST/Query/): the result is read through `FROM fn(...) AS _r`, filtered, ordered and
// paged in a subquery `_s`, and aggregated with json_agg (column order kept, as PostgREST).
#include "api/rpc_query.hpp"

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <set>

#include "api/sql_text.hpp"
#include "cache/key.hpp"

namespace zonegate::api::rpc {

namespace {

// --------------------------------------------------------------- errors

// How much of a request value an error message repeats.
constexpr size_t kEcho = 200;

std::string echo(std::string_view v) {
  return std::string(v.substr(0, kEcho)) + (v.size() > kEcho ? "..." : "");
}

// PostgREST's answer to a query parameter that does not parse (QPError: PGRST100), with where.
http::Response parse_error(const std::string& what, std::string_view value, size_t column,
                           const std::string& details) {
  return http::error_response(400, "PGRST100",
                              "\"failed to parse " + what + " (" + echo(value) +
                                  ")\" (line 1, column " + std::to_string(column + 1) + ")",
                              details);
}

// A feature of PostgREST's read side zonegate's /rpc does not run.
http::Response unsupported(const std::string& what) {
  return http::error_response(400, "PGRST100", what + " is not supported by zonegate's /rpc", "",
                              "see docs/API.md, \"Coming from PostgREST / Supabase\"");
}

// PostgREST's answer for an embedded resource named where none can be (PGRST108).
http::Response not_embedded(const std::string& resource) {
  return http::error_response(
      400, "PGRST108", "'" + resource + "' is not an embedded resource in this request", "",
      "zonegate's /rpc does not embed resources: filter, order and page the function's result");
}

// Select= names a relation to embed: PostgREST finds no relationship (PGRST200).
http::Response no_relationship(const std::string& fn, const std::string& rel) {
  return http::error_response(
      400, "PGRST200",
      "Could not find a relationship between '" + fn + "' and '" + rel + "' in the schema cache",
      "zonegate's /rpc does not embed resources", "");
}

// What Postgres says of a column the result does not have (PostgREST passes that on: 42703).
http::Response no_column(const RpcFunction& f, const std::string& column) {
  std::string cols;
  for (const RpcColumn& c : f.columns)
    cols += (cols.empty() ? "" : ", ") + c.name;
  return http::error_response(
      400, "42703", "column " + f.name + "." + echo(column) + " does not exist", "",
      !cols.empty()         ? "the result's columns are: " + cols
      : f.returns_composite ? std::string("it returns record: declare OUT parameters or "
                                          "RETURNS TABLE to name its columns")
                            : std::string("the result has no columns"));
}

http::Response too_many(const std::string& what, size_t cap) {
  return http::error_response(400, "PGRST100",
                              "too many " + what + ": at most " + std::to_string(cap), "",
                              "docs/API.md, \"/rpc semantics\"");
}

http::Response too_long(const std::string& what) {
  return http::error_response(400, "PGRST100",
                              what + " is longer than " + std::to_string(kMaxValueBytes) + " bytes",
                              "", "pass large values as function arguments in a POST body");
}

http::Response range_error(const std::string& details) {
  return http::error_response(416, "PGRST103", "Requested range not satisfiable", details);
}

// --------------------------------------------------------------- the grammar

bool is_space(char c) {
  return c == ' ' || c == '\t';
}

// A character of an unquoted field name: PostgREST's letter, digit, _, space or $ (any byte of
// a multibyte UTF-8 character counts as a letter).
bool is_ident_char(char c) {
  const auto u = static_cast<unsigned char>(c);
  return std::isalnum(u) != 0 || c == '_' || c == ' ' || c == '$' || u >= 0x80;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && is_space(s.front()))
    s.remove_prefix(1);
  while (!s.empty() && is_space(s.back()))
    s.remove_suffix(1);
  return s;
}

bool starts_with(std::string_view s, std::string_view p) {
  return s.substr(0, p.size()) == p;
}

// A cursor over one parameter value.
struct Cursor {
  std::string_view s;
  size_t i = 0;
  bool end() const { return i >= s.size(); }
  char peek(size_t k = 0) const { return i + k < s.size() ? s[i + k] : '\0'; }
  std::string_view rest() const { return s.substr(std::min(i, s.size())); }
  bool eat(std::string_view p) {
    if (!starts_with(rest(), p)) return false;
    i += p.size();
    return true;
  }
  void skip_spaces() {
    while (!end() && is_space(s[i]))
      ++i;
  }
};

// A double-quoted value: `"..."` with backslash escaping any character.
bool quoted(Cursor& c, std::string& out) {
  if (c.peek() != '"') return false;
  size_t j = c.i + 1;
  std::string v;
  while (j < c.s.size() && c.s[j] != '"') {
    if (c.s[j] == '\\' && j + 1 < c.s.size()) ++j;
    v += c.s[j++];
  }
  if (j >= c.s.size()) return false;  // no closing quote
  c.i = j + 1;
  out = std::move(v);
  return true;
}

// A field name: quoted, or identifier characters joined by dashes (a dash not starting `->`),
// trimmed of spaces. False, with the cursor unmoved, when there is none.
bool field_name(Cursor& c, std::string& out) {
  const size_t start = c.i;
  if (c.peek() == '"') {
    if (quoted(c, out)) return true;
    c.i = start;
    return false;
  }
  std::string name;
  while (true) {
    size_t j = c.i;
    while (j < c.s.size() && is_ident_char(c.s[j]))
      ++j;
    if (j == c.i) break;
    name.append(c.s.substr(c.i, j - c.i));
    c.i = j;
    if (c.peek() == '-' && c.peek(1) != '>' && is_ident_char(c.peek(1))) {
      name += '-';
      ++c.i;
      continue;
    }
    break;
  }
  std::string_view t = trim(name);
  if (t.empty()) {
    c.i = start;
    return false;
  }
  out.assign(t);
  return true;
}

// "unexpected X expecting Y", as PostgREST's parser details read.
std::string unexpected(const Cursor& c, const std::string& expecting) {
  std::string got = c.end() ? std::string("end of input") : "\"" + std::string(1, c.peek()) + "\"";
  return "unexpected " + got + " expecting " + expecting;
}

// One select= item into `out`; false with `error` set.
bool select_item(Cursor& c, const std::string& fn, std::string_view value,
                 std::vector<SelectItem>& out, http::Response& error) {
  c.skip_spaces();
  if (c.eat("...")) {
    std::string rel;
    field_name(c, rel);
    error = no_relationship(fn, rel.empty() ? std::string("...") : rel);
    return false;
  }
  if (c.peek() == '*') {
    ++c.i;
    out.push_back({"*", ""});
    return true;
  }
  std::string first;
  if (!field_name(c, first)) {
    error = parse_error("select parameter", value, c.i,
                        unexpected(c, "field name (* or [a..z0..9_$])"));
    return false;
  }
  SelectItem item;
  if (c.peek() == ':' && c.peek(1) != ':') {
    ++c.i;
    item.alias = first;
    if (!field_name(c, item.column)) {
      error = parse_error("select parameter", value, c.i, unexpected(c, "field name"));
      return false;
    }
  } else {
    item.column = first;
  }
  if (item.column == "count" && starts_with(c.rest(), "()")) {
    error = http::error_response(400, "PGRST123", "Use of aggregate functions is not allowed");
    return false;
  }
  if (c.peek() == '(' || c.peek() == '!') {
    error = no_relationship(fn, item.column);
    return false;
  }
  if (starts_with(c.rest(), "->")) {
    error = unsupported("a JSON path in select (" + echo(item.column) + "->...)");
    return false;
  }
  if (starts_with(c.rest(), "::")) {
    error = unsupported("a cast in select (" + echo(item.column) + "::...)");
    return false;
  }
  if (c.peek() == '.') {
    for (const char* agg : {".sum()", ".avg()", ".count()", ".max()", ".min()"}) {
      if (starts_with(c.rest(), agg)) {
        error = http::error_response(400, "PGRST123", "Use of aggregate functions is not allowed");
        return false;
      }
    }
  }
  out.push_back(std::move(item));
  return true;
}

// select=: items separated by commas (an empty value selects no column).
bool parse_select(std::string_view value, const std::string& fn, std::vector<SelectItem>& out,
                  http::Response& error) {
  Cursor c{value};
  c.skip_spaces();
  if (c.end()) return true;
  while (true) {
    if (!select_item(c, fn, value, out, error)) return false;
    c.skip_spaces();
    if (c.end()) return true;
    if (c.peek() != ',') {
      error = parse_error("select parameter", value, c.i,
                          unexpected(c, "\"->\", \"::\", \".\", \",\" or end of input"));
      return false;
    }
    ++c.i;
    if (out.size() >= kMaxSelectItems) {
      error = too_many("select items", kMaxSelectItems);
      return false;
    }
  }
}

// order=: column[.asc|.desc][.nullsfirst|.nullslast], comma-separated.
bool parse_order(std::string_view value, std::vector<OrderTerm>& out, http::Response& error) {
  Cursor c{value};
  while (true) {
    c.skip_spaces();
    OrderTerm t;
    if (!field_name(c, t.column)) {
      error = parse_error("order", value, c.i, unexpected(c, "field name (* or [a..z0..9_$])"));
      return false;
    }
    if (c.peek() == '(') {
      error = not_embedded(t.column);
      return false;
    }
    if (starts_with(c.rest(), "->")) {
      error = unsupported("a JSON path in order (" + echo(t.column) + "->...)");
      return false;
    }
    if (c.eat(".asc")) {
      t.dir = OrderTerm::Dir::kAsc;
    } else if (c.eat(".desc")) {
      t.dir = OrderTerm::Dir::kDesc;
    }
    if (c.eat(".nullsfirst")) {
      t.nulls = OrderTerm::Nulls::kFirst;
    } else if (c.eat(".nullslast")) {
      t.nulls = OrderTerm::Nulls::kLast;
    }
    c.skip_spaces();
    out.push_back(std::move(t));
    if (out.size() > kMaxOrderTerms) {
      error = too_many("order terms", kMaxOrderTerms);
      return false;
    }
    if (c.end()) return true;
    if (c.peek() != ',') {
      error = parse_error("order", value, c.i,
                          unexpected(c,
                                     "\".asc\", \".desc\", \".nullsfirst\", \".nullslast\", "
                                     "\",\" or end of input"));
      return false;
    }
    ++c.i;
  }
}

// A whole number of at most 18 digits, optionally negative.
bool parse_integer(std::string_view v, int64_t& out) {
  bool negative = false;
  if (!v.empty() && v.front() == '-') {
    negative = true;
    v.remove_prefix(1);
  }
  if (v.empty() || v.size() > 18) return false;
  int64_t n = 0;
  for (char ch : v) {
    if (ch < '0' || ch > '9') return false;
    n = n * 10 + (ch - '0');
  }
  out = negative ? -n : n;
  return true;
}

// in.(...)'s list: elements quoted or raw, comma-separated, in parentheses; nothing after.
bool parse_list(Cursor& c, std::vector<std::string>& out) {
  c.skip_spaces();
  if (!c.eat("(")) return false;
  c.skip_spaces();
  while (true) {
    std::string element;
    const size_t start = c.i;
    if (!(quoted(c, element) && (c.peek() == ',' || c.peek() == ')'))) {
      c.i = start;
      element.clear();
      while (!c.end() && c.peek() != ',' && c.peek() != ')')
        element += c.s[c.i++];
    }
    out.push_back(std::move(element));
    if (out.size() > kMaxListItems) return false;
    if (c.eat(",")) continue;
    if (!c.eat(")")) return false;
    c.skip_spaces();
    return c.end();
  }
}

struct OpName {
  const char* name;
  Op op;
  bool quantifiable;  // may take (any) or (all)
};

// Longest names first where one begins another (gte before gt).
constexpr OpName kOps[] = {
    {"eq", Op::kEq, true},         {"neq", Op::kNeq, false},    {"gte", Op::kGte, true},
    {"gt", Op::kGt, true},         {"lte", Op::kLte, true},     {"lt", Op::kLt, true},
    {"like", Op::kLike, true},     {"ilike", Op::kIlike, true}, {"match", Op::kMatch, true},
    {"imatch", Op::kImatch, true}, {"cs", Op::kCs, false},      {"cd", Op::kCd, false},
    {"ov", Op::kOv, false},        {"sl", Op::kSl, false},      {"sr", Op::kSr, false},
    {"nxr", Op::kNxr, false},      {"nxl", Op::kNxl, false},    {"adj", Op::kAdj, false},
};

const char* op_sql(Op op) {
  switch (op) {
    case Op::kEq:
      return "=";
    case Op::kNeq:
      return "<>";
    case Op::kGt:
      return ">";
    case Op::kGte:
      return ">=";
    case Op::kLt:
      return "<";
    case Op::kLte:
      return "<=";
    case Op::kLike:
      return "LIKE";
    case Op::kIlike:
      return "ILIKE";
    case Op::kMatch:
      return "~";
    case Op::kImatch:
      return "~*";
    case Op::kCs:
      return "@>";
    case Op::kCd:
      return "<@";
    case Op::kOv:
      return "&&";
    case Op::kSl:
      return "<<";
    case Op::kSr:
      return ">>";
    case Op::kNxr:
      return "&<";
    case Op::kNxl:
      return "&>";
    case Op::kAdj:
      return "-|-";
    case Op::kIn:
    case Op::kIs:
    case Op::kIsDistinct:
      break;
  }
  return "=";
}

// Whether the lower-cased `v` equals `word`.
bool iequals(std::string_view v, std::string_view word) {
  return v.size() == word.size() &&
         std::equal(v.begin(), v.end(), word.begin(), [](char a, char b) {
           return std::tolower(static_cast<unsigned char>(a)) == b;
         });
}

// A filter key: one field name, no embedded path, no JSON path.
bool filter_column(const std::string& key, std::string& column, http::Response& error) {
  Cursor c{key};
  if (!field_name(c, column)) {
    error = parse_error("tree path", key, c.i, unexpected(c, "field name (* or [a..z0..9_$])"));
    return false;
  }
  if (c.peek() == '.') {
    error = not_embedded(column);
    return false;
  }
  if (starts_with(c.rest(), "->")) {
    error = unsupported("a JSON path in a filter (" + echo(column) + "->...)");
    return false;
  }
  if (!c.end()) {
    error = parse_error("tree path", key, c.i, unexpected(c, "\".\", \"->\" or end of input"));
    return false;
  }
  return true;
}

// A Postgres array literal of text elements, each quoted: {"a","b \"c\""}.
std::string array_literal(const std::vector<std::string>& items) {
  if (items.size() == 1 && items[0].empty()) return "{}";  // in.() is the empty list
  return pg_text_array(items);
}

// The last dot-separated segment of a key.
std::string_view last_segment(std::string_view key) {
  size_t dot = key.rfind('.');
  return dot == std::string_view::npos ? key : key.substr(dot + 1);
}

// --------------------------------------------------------------- headers

// One media range of Accept and its weight.
struct Accepted {
  std::string type;  // type/subtype, lower-cased
  std::vector<std::pair<std::string, std::string>> params;
  double q = 1;
};

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char ch) { return static_cast<char>(std::tolower(ch)); });
  return out;
}

// Splits `s` at `sep`.
std::vector<std::string_view> split(std::string_view s, char sep) {
  std::vector<std::string_view> out;
  size_t start = 0;
  while (true) {
    size_t at = s.find(sep, start);
    out.push_back(
        s.substr(start, at == std::string_view::npos ? std::string_view::npos : at - start));
    if (at == std::string_view::npos) return out;
    start = at + 1;
  }
}

// Accept's media ranges, highest weight first (ties keep their order); weight 0 is left out.
std::vector<Accepted> parse_accept(std::string_view header) {
  std::vector<Accepted> out;
  for (std::string_view part : split(header, ',')) {
    std::vector<std::string_view> fields = split(part, ';');
    Accepted a;
    a.type = lower(trim(fields[0]));
    if (a.type.empty()) continue;
    for (size_t k = 1; k < fields.size(); ++k) {
      std::string_view f = trim(fields[k]);
      size_t eq = f.find('=');
      if (eq == std::string_view::npos) continue;
      std::string name = lower(trim(f.substr(0, eq)));
      std::string_view v = trim(f.substr(eq + 1));
      if (v.size() >= 2 && v.front() == '"' && v.back() == '"') v = v.substr(1, v.size() - 2);
      if (name == "q") {
        std::string text(v);
        char* endp = nullptr;
        double q = std::strtod(text.c_str(), &endp);
        if (endp != text.c_str() && q >= 0 && q <= 1) a.q = q;
        continue;
      }
      a.params.emplace_back(std::move(name), std::string(v));
    }
    if (a.q > 0) out.push_back(std::move(a));
  }
  std::stable_sort(out.begin(), out.end(),
                   [](const Accepted& x, const Accepted& y) { return x.q > y.q; });
  return out;
}

// What /rpc produces for one media range, as PostgREST's built-in handlers do; false for
// anything else.
bool producible(const Accepted& a, QueryRequest& q) {
  bool stripped = false;
  for (const auto& [k, v] : a.params) {
    if (k == "nulls" && v == "stripped") stripped = true;
  }
  if (a.type == "application/json" || a.type == "*/*") {
    q.media = Media::kJson;
    q.strip_nulls = false;
    return true;
  }
  if (a.type == "application/vnd.pgrst.object+json" || a.type == "application/vnd.pgrst.object") {
    q.media = Media::kObject;
    q.strip_nulls = stripped;
    return true;
  }
  if (a.type == "application/vnd.pgrst.array+json" || a.type == "application/vnd.pgrst.array") {
    q.media = Media::kJson;
    q.strip_nulls = stripped;
    return true;
  }
  if (a.type == "text/csv") {
    q.media = Media::kCsv;
    q.strip_nulls = false;
    return true;
  }
  return false;
}

// The Content-Type of an answer.
std::string content_type(Media m, bool strip) {
  switch (m) {
    case Media::kObject:
      return strip ? "application/vnd.pgrst.object+json;nulls=stripped; charset=utf-8"
                   : "application/vnd.pgrst.object+json; charset=utf-8";
    case Media::kCsv:
      return "text/csv; charset=utf-8";
    case Media::kJson:
      break;
  }
  return strip ? "application/vnd.pgrst.array+json;nulls=stripped; charset=utf-8"
               : "application/json; charset=utf-8";
}

// The preferences PostgREST knows (the others are invalid: refused with handling=strict).
bool known_preference(std::string_view p) {
  static const char* const kKnown[] = {"count=exact",
                                       "count=planned",
                                       "count=estimated",
                                       "params=single-object",
                                       "return=minimal",
                                       "return=headers-only",
                                       "return=representation",
                                       "tx=commit",
                                       "tx=rollback",
                                       "handling=strict",
                                       "handling=lenient",
                                       "missing=default",
                                       "missing=null",
                                       "resolution=merge-duplicates",
                                       "resolution=ignore-duplicates"};
  for (const char* k : kKnown) {
    if (p == k) return true;
  }
  return starts_with(p, "timezone=") || starts_with(p, "max-affected=");
}

// A CSV header field, quoted when it must be (RFC 4180).
std::string csv_field(const std::string& name) {
  if (name.find_first_of(",\"\r\n") == std::string::npos) return name;
  std::string out = "\"";
  for (char ch : name) {
    if (ch == '"') out += '"';
    out += ch;
  }
  return out + "\"";
}

const char* media_tag(Media m) {
  switch (m) {
    case Media::kObject:
      return "object";
    case Media::kCsv:
      return "csv";
    case Media::kJson:
      break;
  }
  return "json";
}

}  // namespace

// --------------------------------------------------------------- filters

FilterParse parse_filter_value(std::string_view value, Filter& out, std::string& why) {
  out = Filter();
  Cursor c{value};
  const bool negated = c.eat("not.");
  out.negate = negated;
  auto malformed = [&](const std::string& w) {
    why = w;
    return FilterParse::kMalformed;
  };
  if (c.eat("in.")) {
    out.op = Op::kIn;
    if (!parse_list(c, out.list)) {
      return malformed(out.list.size() > kMaxListItems
                           ? "more than " + std::to_string(kMaxListItems) + " elements in in.(...)"
                           : "in. takes a list in parentheses: in.(a,b,\"c,d\")");
    }
    return FilterParse::kFilter;
  }
  if (c.eat("is.")) {
    out.op = Op::kIs;
    std::string_view v = c.rest();
    if (iequals(v, "null")) {
      out.is = "NULL";
    } else if (iequals(v, "true")) {
      out.is = "TRUE";
    } else if (iequals(v, "false")) {
      out.is = "FALSE";
    } else if (iequals(v, "unknown")) {
      out.is = "UNKNOWN";
    } else {
      return malformed("is. takes null, true, false or unknown");
    }
    return FilterParse::kFilter;
  }
  if (c.eat("isdistinct.")) {
    out.op = Op::kIsDistinct;
    out.value.assign(c.rest());
    return FilterParse::kFilter;
  }
  for (const char* fts : {"fts", "plfts", "phfts", "wfts"}) {
    Cursor t = c;
    if (!t.eat(fts)) continue;
    if (t.peek() == '(') {
      while (!t.end() && t.peek() != ')')
        ++t.i;
      t.eat(")");
    }
    if (t.peek() == '.') {
      why = std::string("full-text search (") + fts + ")";
      return FilterParse::kUnsupported;
    }
  }
  for (const OpName& o : kOps) {
    Cursor t = c;
    if (!t.eat(o.name)) continue;
    Quant quant = Quant::kNone;
    if (o.quantifiable && t.eat("(any)")) {
      quant = Quant::kAny;
    } else if (o.quantifiable && t.eat("(all)")) {
      quant = Quant::kAll;
    }
    if (!t.eat(".")) continue;
    out.op = o.op;
    out.quant = quant;
    out.value.assign(t.rest());
    if (o.op == Op::kLike || o.op == Op::kIlike) {
      std::replace(out.value.begin(), out.value.end(), '*', '%');
    }
    return FilterParse::kFilter;
  }
  if (negated) return malformed("not. must be followed by an operator (eq, gt, ...)");
  return FilterParse::kNotAFilter;
}

// --------------------------------------------------------------- the request

bool split_query(std::vector<std::pair<std::string, std::string>>& pairs, bool is_get,
                 const std::string& fn, QueryRequest& out,
                 std::vector<std::pair<std::string, std::string>>& args, http::Response& error) {
  std::set<std::string> reserved_seen;
  auto once = [&](const std::string& k) {
    if (reserved_seen.insert(k).second) return true;
    error = http::error_response(400, "PGRST100", "query parameter \"" + k + "\" given twice");
    return false;
  };
  for (auto& [k, v] : pairs) {
    if (k == "select" || k == "order") {
      if (!once(k)) return false;
      if (v.size() > kMaxValueBytes) {
        error = too_long(k + "=");
        return false;
      }
      if (k == "select") {
        out.has_select = true;
        if (!parse_select(v, fn, out.select, error)) return false;
      } else if (!parse_order(v, out.order, error)) {
        return false;
      }
      continue;
    }
    if (k == "limit" || k == "offset") {
      if (!once(k)) return false;
      int64_t n = 0;
      if (!parse_integer(v, n)) {
        error = http::error_response(400, "PGRST100", "\"" + k + "\" must be a whole number",
                                     "got \"" + echo(v) + "\"");
        return false;
      }
      if (k == "limit") {
        out.limit = n;
      } else if (n < 0) {
        error = http::error_response(400, "PGRST100", "\"offset\" must not be negative");
        return false;
      } else {
        out.offset = n;
      }
      continue;
    }
    if (k == "on_conflict") continue;  // PostgREST ignores it outside inserts
    if (k == "columns") {
      error = unsupported("columns=");
      return false;
    }
    std::string_view last = last_segment(k);
    if (last == "and" || last == "or") {
      error = unsupported("logic trees (and=, or=)");
      return false;
    }
    if (last == "order" || last == "limit" || last == "offset") {
      error = not_embedded(std::string(k.substr(0, k.find('.'))));
      return false;
    }
    Filter f;
    std::string why;
    // Every operator expression has a dot (eq., not., in.): most arguments need no parsing.
    if (v.find('.') == std::string::npos ||
        parse_filter_value(v, f, why) == FilterParse::kNotAFilter) {
      if (is_get) {
        args.emplace_back(std::move(k), std::move(v));
        continue;
      }
      error = parse_error("filter", v, 0,
                          "a query parameter of a POST is a filter: column=operator.value (eq, "
                          "gt, ...); arguments go in the body");
      return false;
    }
    out.filters.push_back({std::move(k), std::move(v)});
  }
  return true;
}

bool read_headers(const std::string* accept, const std::vector<std::string_view>& prefer,
                  const std::string* range, bool is_get, QueryRequest& out, http::Response& error) {
  if (accept != nullptr && !trim(*accept).empty()) {
    std::vector<Accepted> ranges = parse_accept(*accept);
    bool found = false;
    for (const Accepted& a : ranges) {
      if (producible(a, out)) {
        found = true;
        break;
      }
    }
    if (!found) {
      std::string names;
      for (const Accepted& a : ranges)
        names += (names.empty() ? "" : ", ") + a.type;
      error = http::error_response(406, "PGRST107",
                                   "None of these media types are available: " + echo(names), "",
                                   "ask for application/json, "
                                   "application/vnd.pgrst.object+json or text/csv");
      return false;
    }
  }

  std::vector<std::string> invalid;
  for (std::string_view header : prefer) {
    for (std::string_view token : split(header, ',')) {
      token = trim(token);
      if (token.empty()) continue;
      if (!known_preference(token)) {
        invalid.emplace_back(token.substr(0, 64));
        continue;
      }
      if (token == "count=exact") {
        out.count = Count::kExact;
      } else if (token == "count=planned") {
        out.count = Count::kPlanned;
      } else if (token == "count=estimated") {
        out.count = Count::kEstimated;
      } else if (token == "params=single-object") {
        out.single_object = !is_get;  // a GET's arguments are query parameters, never a body
      } else if (token == "handling=strict") {
        out.strict = true;
      }
    }
  }
  if (out.strict && !invalid.empty()) {
    std::string list;
    for (const std::string& p : invalid)
      list += (list.empty() ? "" : ", ") + p;
    error = http::error_response(400, "PGRST122", "Invalid preferences given with handling=strict",
                                 "Invalid preferences: " + echo(list));
    return false;
  }

  // Range: items a-b as PostgREST reads it (^[0-9]+-[0-9]*$); anything else is ignored, and so
  // is a Range on another method than GET (RFC 9110 §14.2).
  if (range != nullptr && is_get) {
    std::string_view r = trim(*range);
    size_t dash = r.find('-');
    int64_t lo = 0;
    int64_t hi = 0;
    if (dash != std::string_view::npos && dash > 0 && parse_integer(r.substr(0, dash), lo) &&
        lo >= 0) {
      std::string_view up = r.substr(dash + 1);
      if (up.empty()) {
        out.has_range = true;
        out.range_lower = lo;
      } else if (parse_integer(up, hi) && hi >= 0 && up.front() != '-') {
        if (lo > hi) {
          error = range_error(
              "The lower boundary must be lower than or equal to the upper boundary in the Range "
              "header.");
          return false;
        }
        out.has_range = true;
        out.range_lower = lo;
        out.range_upper = hi;
      }
    }
  }
  return true;
}

// --------------------------------------------------------------- SQL

std::string call_sql(const RpcFunction& f, const std::vector<size_t>& used, bool whole_body) {
  std::string call = quote_ident(f.schema) + "." + quote_ident(f.name) + "(";
  if (whole_body && !f.args.empty()) {
    call += "$1::" + f.args[0].type;
  } else {
    for (size_t i = 0; i < used.size(); ++i) {
      const RpcArg& a = f.args[used[i]];
      if (i > 0) call += ", ";
      call += quote_ident(a.name) + " => $" + std::to_string(i + 1) + "::" + a.type;
    }
  }
  return call + ")";
}

bool plan_call(const RpcFunction& f, size_t call_params, const QueryRequest& q, Plan& out,
               http::Response& error) {
  out = Plan();
  out.media = q.media;
  out.strip_nulls = q.strip_nulls;
  out.returns_void = f.returns_void;
  out.returns_set = f.returns_set;
  out.count = q.count != Count::kNone && !f.returns_void;
  if (out.count) out.applied.emplace_back("count=exact");
  if (q.single_object) out.applied.emplace_back("params=single-object");
  if (q.strict) out.applied.emplace_back("handling=strict");

  // The page: offset= and limit= intersected with Range, as PostgREST does.
  int64_t lower = q.offset;
  std::optional<int64_t> upper;
  if (q.limit) {
    if (*q.limit < 0) {
      error = range_error("Limit should be greater than or equal to zero.");
      return false;
    }
    upper = q.offset + *q.limit - 1;
  }
  if (q.has_range) {
    lower = std::max(lower, q.range_lower);
    if (q.range_upper) upper = upper ? std::min(*upper, *q.range_upper) : *q.range_upper;
  }
  const bool limit_zero = q.limit && *q.limit == 0;
  if (limit_zero) {
    lower = 0;
    upper = -1;
  } else if (upper && lower > *upper) {
    error = range_error("Limit should be greater than or equal to zero.");
    return false;
  }
  out.lower = lower;

  // Every column named must be one of the result's.
  if (q.filters.size() > kMaxFilters) {
    error = too_many("filters", kMaxFilters);
    return false;
  }
  std::vector<Filter> filters;
  for (const FilterParam& p : q.filters) {
    if (p.value.size() > kMaxValueBytes) {
      error = too_long("the value of filter \"" + echo(p.name) + "\"");
      return false;
    }
    Filter flt;
    std::string why;
    FilterParse parsed = parse_filter_value(p.value, flt, why);
    if (parsed == FilterParse::kUnsupported) {
      error = unsupported(why);
      return false;
    }
    if (parsed != FilterParse::kFilter) {
      error = parse_error("filter", p.value, 0, why);
      return false;
    }
    if (!filter_column(p.name, flt.column, error)) return false;
    if (f.column(flt.column) == nullptr) {
      error = no_column(f, flt.column);
      return false;
    }
    filters.push_back(std::move(flt));
  }
  for (const OrderTerm& t : q.order) {
    if (f.column(t.column) == nullptr) {
      error = no_column(f, t.column);
      return false;
    }
  }
  const bool scalar = f.returns_scalar();
  // The selected columns, "*" expanded, each with its name in the answer.
  std::vector<std::pair<std::string, std::string>> chosen;
  bool renamed = false;
  bool star_only = true;
  for (const SelectItem& s : q.select) {
    if (s.column == "*") {
      for (const RpcColumn& col : f.columns)
        chosen.emplace_back(col.name, col.name);
      continue;
    }
    star_only = false;
    if (f.column(s.column) == nullptr) {
      error = no_column(f, s.column);
      return false;
    }
    if (!s.alias.empty() && s.alias != s.column) renamed = true;
    chosen.emplace_back(s.column, s.alias.empty() ? s.column : s.alias);
  }
  const bool all_columns = !q.has_select || (star_only && !q.select.empty());
  if (f.returns_composite && f.columns.empty() &&
      (!all_columns || !filters.empty() || !q.order.empty())) {
    error =
        http::error_response(400, "PGRST100", "the result of " + f.name + " has no known columns",
                             "", "it returns record: declare OUT parameters or RETURNS TABLE");
    return false;
  }
  if (chosen.size() > kMaxSelectItems) {
    error = too_many("selected columns", kMaxSelectItems);
    return false;
  }

  const std::string fq = quote_ident(f.name);
  const char* const kTail = " AS page_total, ";
  out.plain = all_columns && filters.empty() && q.order.empty() && !q.limit && lower == 0 &&
              !q.has_range && !out.count && q.media == Media::kJson && !q.strip_nulls &&
              out.applied.empty();
  // The statement is `before` + the call + `after`: the call is built only when the cache has no
  // answer, and the plain ones are a few constants.
  // A plain statement leaves out the counts it does not need: one row of a non-set result is
  // one row, and nothing was asked to be counted.
  if (f.returns_void) {
    // PostgREST answers 204 whatever was asked of a void result.
    out.plain = true;
    out.before = "SELECT NULL::pg_catalog.text AS body FROM ";
    out.after = " AS _r";
    return true;
  }
  if (out.plain) {
    if (!f.returns_set && scalar) {
      out.before = "SELECT pg_catalog.to_json(";
      out.after = ")::pg_catalog.text AS body";
    } else if (!f.returns_set) {
      out.before = "SELECT pg_catalog.to_json(_r)::pg_catalog.text AS body FROM ";
      out.after = " AS _r";
    } else if (scalar) {
      out.before = "SELECT coalesce(pg_catalog.json_agg(_r." + fq +
                   "), '[]')::pg_catalog.text AS body, pg_catalog.count(*) AS page_total FROM ";
      out.after = " AS _r(" + fq + ")";
    } else {
      out.before =
          "SELECT coalesce(pg_catalog.json_agg(_r), '[]')::pg_catalog.text AS body, "
          "pg_catalog.count(*) AS page_total FROM ";
      out.after = " AS _r";
    }
    return true;
  }

  size_t next = call_params;
  auto param = [&](std::optional<std::string> v) {
    out.params.push_back(std::move(v));
    return "$" + std::to_string(++next);
  };
  const std::string alias = std::string(" AS _r") + (scalar ? "(" + fq + ")" : "");

  std::string where;
  for (const Filter& flt : filters) {
    const std::string col = "_r." + quote_ident(flt.column);
    std::string e;
    if (flt.op == Op::kIn) {
      e = col + " = ANY (" + param(array_literal(flt.list)) + ")";
    } else if (flt.op == Op::kIs) {
      e = col + " IS " + flt.is;
    } else if (flt.op == Op::kIsDistinct) {
      e = col + " IS DISTINCT FROM " + param(flt.value);
    } else if (flt.quant != Quant::kNone) {
      e = col + " " + op_sql(flt.op) + (flt.quant == Quant::kAny ? " ANY (" : " ALL (") +
          param(flt.value) + ")";
    } else {
      e = col + " " + op_sql(flt.op) + " " + param(flt.value);
    }
    if (flt.negate) e = "NOT (" + e + ")";
    where += (where.empty() ? " WHERE " : " AND ") + e;
  }
  std::string order;
  for (const OrderTerm& t : q.order) {
    order += (order.empty() ? " ORDER BY " : ", ") + ("_r." + quote_ident(t.column));
    if (t.dir == OrderTerm::Dir::kAsc) order += " ASC";
    if (t.dir == OrderTerm::Dir::kDesc) order += " DESC";
    if (t.nulls == OrderTerm::Nulls::kFirst) order += " NULLS FIRST";
    if (t.nulls == OrderTerm::Nulls::kLast) order += " NULLS LAST";
  }
  std::string page;
  if (upper) page += " LIMIT " + param(std::to_string(*upper - lower + 1)) + "::pg_catalog.int8";
  if (lower > 0) page += " OFFSET " + param(std::to_string(lower)) + "::pg_catalog.int8";

  // What each row of _s holds, the JSON array of the rows, and the CSV header's names.
  std::string columns;
  std::string agg;
  std::vector<std::string> names;
  if (scalar) {
    columns = "_r." + fq;
    agg = "pg_catalog.json_agg(_s." + fq + ")";
    names.push_back(!q.select.empty() && !q.select[0].alias.empty() ? q.select[0].alias : f.name);
  } else if (all_columns) {
    columns = "_r.*";
    agg = "pg_catalog.json_agg(_s)";
    for (const RpcColumn& col : f.columns)
      names.push_back(col.name);
  } else if (!renamed) {
    for (const auto& [col, name] : chosen) {
      columns += (columns.empty() ? "" : ", ") + ("_r." + quote_ident(col));
      names.push_back(name);
    }
    agg = "pg_catalog.json_agg(_s)";
  } else {
    // Names from the request are never SQL: each is a parameter, written as JSON by to_json.
    // Each object and the array are put together as row_to_json and json_agg write them
    // ({"a":1,"b":"x"}, rows separated by ", \n "), so a renamed answer reads like any other.
    // CSV needs no names in SQL at all (its header is one parameter).
    const bool csv = q.media == Media::kCsv;
    std::string row = "'{' || ";
    for (size_t k = 0; k < chosen.size(); ++k) {
      const std::string c = "_c" + std::to_string(k + 1);
      columns += (k == 0 ? "" : ", ") + ("_r." + quote_ident(chosen[k].first) + " AS " + c);
      names.push_back(chosen[k].second);
      if (csv) continue;
      row += (k == 0 ? "" : " || ',' || ") + ("pg_catalog.to_json(" + param(chosen[k].second)) +
             "::pg_catalog.text)::pg_catalog.text || ':' || coalesce(pg_catalog.to_json(_s." + c +
             ")::pg_catalog.text, 'null')";
    }
    row += " || '}'";
    agg = "('[' || pg_catalog.string_agg(" + row + ", E', \\n ') || ']')::pg_catalog.json";
  }

  auto stripped = [&](const std::string& json) {
    return q.strip_nulls ? "pg_catalog.json_strip_nulls(" + json + ")" : json;
  };
  const std::string first = "coalesce(" + stripped(agg + " -> 0") + ", 'null')";
  std::string body;
  if (q.media == Media::kCsv) {
    std::string header;
    for (const std::string& n : names)
      header += (header.empty() ? "" : ",") + csv_field(n);
    // Each row as Postgres writes a record, without its parentheses: PostgREST's CSV.
    body = param(header) +
           "::pg_catalog.text || E'\\n' || coalesce(pg_catalog.string_agg("
           "pg_catalog.substr(_s::pg_catalog.text, 2, pg_catalog.length(_s::pg_catalog.text) - 2), "
           "E'\\n'), '')";
  } else if (!f.returns_set) {
    body = first;  // one row: its value or object, null when a filter left none
  } else if (q.media == Media::kObject) {
    // Not exactly one row: an error, so that a VOLATILE function's writes roll back.
    body = "CASE WHEN pg_catalog.count(*) = 1 THEN " + first +
           " ELSE (('zonegate:PGRST116:' || pg_catalog.count(*))::pg_catalog.int8)"
           "::pg_catalog.text::pg_catalog.json END";
  } else {
    body = "coalesce(" + stripped(agg) + ", '[]')";
  }

  const std::string select =
      "SELECT (" + body + ")::pg_catalog.text AS body, " +
      (f.returns_set ? "pg_catalog.count(*)" : "1::pg_catalog.int8") + kTail +
      (out.count ? "(SELECT pg_catalog.count(*) FROM _src)" : "NULL::pg_catalog.int8") +
      " AS total FROM (SELECT " + columns + " FROM ";
  if (out.count) {
    // Filtered once, counted and paged from the same rows: the function runs once.
    out.before = "WITH _src AS MATERIALIZED (SELECT * FROM ";
    out.after = alias + where + ") " + select + "_src AS _r" + order + page + ") _s";
  } else {
    out.before = select;
    out.after = alias + where + order + page + ") _s";
  }

  // The statement and its values say everything the database answers; the media type and the
  // preferences say the rest of the response.
  cache::append_key_part(out.cache_part, media_tag(q.media));
  cache::append_key_part(out.cache_part, q.strip_nulls ? "strip" : "keep");
  cache::append_key_part(out.cache_part, std::to_string(out.lower));
  for (const std::string& a : out.applied)
    cache::append_key_part(out.cache_part, a);
  cache::append_key_part(out.cache_part, out.before);
  cache::append_key_part(out.cache_part, out.after);
  cache::append_key_part(out.cache_part, std::to_string(out.params.size()));
  for (const auto& p : out.params)
    cache::append_key_value(out.cache_part, p);
  return true;
}

// --------------------------------------------------------------- the answer

http::Response shape(const Plan& plan, const pg::Result& r) {
  const std::vector<std::optional<std::string>>* row = r.rows.empty() ? nullptr : r.rows.data();
  auto cell = [&](size_t k) -> const std::optional<std::string>* {
    return row != nullptr && k < row->size() ? &(*row)[k] : nullptr;
  };
  auto number = [&](size_t k, int64_t fallback) {
    const std::optional<std::string>* v = cell(k);
    int64_t n = 0;
    return v != nullptr && *v && parse_integer(**v, n) ? n : fallback;
  };
  std::optional<int64_t> total;
  if (const std::optional<std::string>* t = cell(2); t != nullptr && *t) total = number(2, 0);
  const int64_t page = number(1, plan.returns_set ? 0 : 1);
  const int64_t lower = plan.lower;
  const int64_t upper = lower + page - 1;
  std::string range = (total.value_or(1) != 0 && lower <= upper)
                          ? std::to_string(lower) + "-" + std::to_string(upper)
                          : std::string("*");
  range += "/" + (total ? std::to_string(*total) : std::string("*"));

  http::Response resp = [&] {
    if (plan.returns_void) return http::Response(204, "");
    if (total && lower > *total) {
      return range_error("An offset of " + std::to_string(lower) +
                         " was requested, but there are only " + std::to_string(*total) + " rows.");
    }
    const std::optional<std::string>* body = cell(0);
    http::Response ok(total && (1 + upper - lower) < *total ? 206 : 200,
                      body != nullptr && *body    ? **body
                      : plan.media == Media::kCsv ? std::string()
                                                  : std::string("null"));
    if (plan.media != Media::kJson || plan.strip_nulls) {
      ok.content_type = content_type(plan.media, plan.strip_nulls);
    }
    return ok;
  }();
  resp.headers.reserve(2);
  resp.add_header("Content-Range", std::move(range));
  if (!plan.applied.empty()) {
    std::string applied;
    for (const std::string& a : plan.applied)
      applied += (applied.empty() ? "" : ", ") + a;
    resp.add_header("Preference-Applied", std::move(applied));
  }
  return resp;
}

bool singular_failure(const pg::Result& r, http::Response& out) {
  if (r.failure != pg::Failure::kSql || r.sqlstate != "22P02") return false;
  static const std::string kMarker = "\"zonegate:PGRST116:";
  size_t at = r.message.find(kMarker);
  if (at == std::string::npos) return false;
  size_t from = at + kMarker.size();
  size_t to = r.message.find('"', from);
  int64_t n = 0;
  if (to == std::string::npos ||
      !parse_integer(std::string_view(r.message).substr(from, to - from), n)) {
    return false;
  }
  out =
      http::error_response(406, "PGRST116", "JSON object requested, multiple (or no) rows returned",
                           "The result contains " + std::to_string(n) + " rows");
  return true;
}

}  // namespace zonegate::api::rpc
