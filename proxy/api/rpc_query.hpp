// /rpc's read side, as PostgREST 12 applies it to a function's result: the query parameters
// (select=, horizontal filters, order=, limit=, offset=), the Range, Prefer and Accept headers,
// the one SQL statement around the function call, and the shaping of its answer (a JSON array,
// object or value, CSV, Content-Range, 206/406/416). SQL is built from catalog identifiers and
// fixed text only: every request value, the names of renamed columns included, is a bound
// parameter. No database or event-loop types, so that it is unit-tested and fuzzed
// (tests/fuzz/rpc_query_fuzz.cpp). docs/API.md, "/rpc semantics".
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "api/rpc_function.hpp"
#include "http/message.hpp"
#include "pg/job.hpp"

namespace zonegate::api::rpc {

// What one request may ask for; past these it is refused with 400 PGRST100 before any SQL is
// built (docs/API.md, "/rpc semantics").
constexpr size_t kMaxFilters = 64;
constexpr size_t kMaxOrderTerms = 16;
constexpr size_t kMaxSelectItems = 100;  // select= items, and columns once * is expanded
constexpr size_t kMaxValueBytes = 4096;  // a filter value, select= or order=
constexpr size_t kMaxListItems = 1000;   // in.(...)

// Horizontal filter operators (PostgREST's names in the comments).
enum class Op {
  kEq,          // eq  =
  kNeq,         // neq <>
  kGt,          // gt  >
  kGte,         // gte >=
  kLt,          // lt  <
  kLte,         // lte <=
  kLike,        // like  LIKE, * as %
  kIlike,       // ilike ILIKE, * as %
  kMatch,       // match  ~
  kImatch,      // imatch ~*
  kIn,          // in.(a,b)  = ANY
  kIs,          // is.null|true|false|unknown
  kIsDistinct,  // isdistinct  IS DISTINCT FROM
  kCs,          // cs  @>
  kCd,          // cd  <@
  kOv,          // ov  &&
  kSl,          // sl  <<
  kSr,          // sr  >>
  kNxr,         // nxr &<
  kNxl,         // nxl &>
  kAdj,         // adj -|-
};
// eq(any).{a,b}: the value is an array literal compared with ANY or ALL.
enum class Quant { kNone, kAny, kAll };

// One horizontal filter: `column=[not.]op[(any|all)].value`.
struct Filter {
  std::string column;
  bool negate = false;
  Op op = Op::kEq;
  Quant quant = Quant::kNone;
  std::string value;              // the value's text (like/ilike: * already turned into %)
  std::vector<std::string> list;  // in.(...)'s elements
  const char* is = nullptr;       // is.: NULL, TRUE, FALSE or UNKNOWN (fixed text)
};

// How a query value reads: not an operator expression (on GET, an argument), a filter, an
// operator expression that does not parse (`in.(1`, `is.maybe`, `not.x`), or one zonegate does
// not run (full-text search).
enum class FilterParse { kNotAFilter, kFilter, kMalformed, kUnsupported };
// Reads a query value as PostgREST's filter grammar does; `why` says what is wrong when it is
// kMalformed or kUnsupported.
FilterParse parse_filter_value(std::string_view value, Filter& out, std::string& why);

// One select= item: a column ("*": every column) and the name it gets in the answer.
struct SelectItem {
  std::string column;
  std::string alias;  // empty: the column's own name
};

// One order= term.
struct OrderTerm {
  enum class Dir { kDefault, kAsc, kDesc };
  enum class Nulls { kDefault, kFirst, kLast };
  std::string column;
  Dir dir = Dir::kDefault;
  Nulls nulls = Nulls::kDefault;
};

// The answer's media type (Accept).
enum class Media { kJson, kObject, kCsv };
// Prefer: count=...; planned and estimated are answered exactly (a function's row estimate is
// its declared ROWS, which says nothing).
enum class Count { kNone, kExact, kPlanned, kEstimated };

// A query parameter that is a filter, or on GET may yet be an argument.
struct FilterParam {
  std::string name;
  std::string value;
};

// What the query string and the headers ask of the result, before the function is known.
struct QueryRequest {
  bool has_select = false;
  std::vector<SelectItem> select;
  std::vector<FilterParam> filters;  // operator expressions, in the order given
  std::vector<OrderTerm> order;
  std::optional<int64_t> limit;
  int64_t offset = 0;
  // Range: a-b (GET only); no upper bound when b is empty.
  bool has_range = false;
  int64_t range_lower = 0;
  std::optional<int64_t> range_upper;
  Media media = Media::kJson;
  bool strip_nulls = false;  // nulls=stripped
  Count count = Count::kNone;
  bool single_object = false;  // Prefer: params=single-object
  bool strict = false;         // Prefer: handling=strict
};

// Splits a query string's decoded pairs: the reserved parameters (select, order, limit,
// offset) are parsed into `out`, operator expressions become out.filters, and on GET the other
// pairs are the function's arguments (`args`); on POST every other pair must be a filter.
// False with the answer to send (400) when something does not parse or is not supported; `fn`
// names the function in those answers.
bool split_query(std::vector<std::pair<std::string, std::string>>& pairs, bool is_get,
                 const std::string& fn, QueryRequest& out,
                 std::vector<std::pair<std::string, std::string>>& args, http::Response& error);

// Reads Accept, every Prefer header and (GET only) Range into `out`. False with the answer to
// send: 406 PGRST107 for an Accept nothing here produces, 400 PGRST122 for unknown preferences
// with handling=strict, 416 PGRST103 for a Range whose lower bound is past its upper one.
bool read_headers(const std::string* accept, const std::vector<std::string_view>& prefer,
                  const std::string* range, bool is_get, QueryRequest& out, http::Response& error);

// The call of `f`, schema-qualified: each used input named and cast to its type
// (`"api"."f"("a" => $1::integer)`), or with `whole_body` its one input positional.
std::string call_sql(const RpcFunction& f, const std::vector<size_t>& used, bool whole_body);

// The one statement of a call and what shaping its answer needs. The statement's one row has
// `body` (text: the answer) first, then `page_total` (rows in this page; left out of a plain
// call of a non-set function: one) and `total` (rows in all pages when counted, else NULL; left
// out of a plain call).
struct Plan {
  // The statement is before + the call (call_sql) + after: the call is put in only when the
  // statement runs (a cache hit builds no SQL).
  std::string before;
  std::string after;
  std::string statement(const std::string& call) const { return before + call + after; }
  std::vector<std::optional<std::string>> params;  // the query's own, numbered after the call's
  bool plain = true;       // nothing asked of the result: the fast statement, the call's cache key
  std::string cache_part;  // what the query adds to the cache key ("" when plain)
  Media media = Media::kJson;
  bool strip_nulls = false;
  bool returns_void = false;
  bool returns_set = false;
  bool count = false;
  int64_t lower = 0;                 // the first row asked for (Content-Range)
  std::vector<std::string> applied;  // Preference-Applied
};

// Plans the statement around a call of `f` (which binds $1..$call_params) for `q`. False with
// the answer to send: 400 42703 for a column the result does not have, 400 PGRST100 for a filter
// that does not parse or a cap passed, 416 PGRST103 for an empty range.
bool plan_call(const RpcFunction& f, size_t call_params, const QueryRequest& q, Plan& out,
               http::Response& error);

// The response for a successful result of the plan's statement: 204 for void, else the body with
// Content-Type, Content-Range and Preference-Applied, 206 for a partial page of a counted result
// and 416 PGRST103 past its end.
http::Response shape(const Plan& plan, const pg::Result& r);

// The error the statement raises when an object was asked for and the result is not one row
// (so that the transaction rolls back, as PostgREST's does): 406 PGRST116 with the count. False
// when `r` is another failure.
bool singular_failure(const pg::Result& r, http::Response& out);

}  // namespace zonegate::api::rpc
