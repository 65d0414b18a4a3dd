// zonegate._selftest_guard(kind): proves the boundary guards work in a live backend. Each kind
// raises one sort of failure from C++ code; the regression suite checks the SQL error it becomes
// and that the backend keeps serving. Not granted to PUBLIC.
#include <cstdint>
#include <new>
#include <stdexcept>
#include <string>

#include "core/context.hpp"
#include "core/error.hpp"

extern "C" {
#include "postgres.h"
#include "fmgr.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
}

#include "pg/datum.hpp"
#include "pg/guard.hpp"

namespace {

int64_t g_unwound_frames = 0;

// Counts its own destruction: proof that a Postgres ERROR unwound the C++ frame holding it.
struct FrameSentinel {
  std::string payload{"a heap-owning object that must be destroyed"};
  ~FrameSentinel() { ++g_unwound_frames; }
};

std::string text_arg(FunctionCallInfo fcinfo, int n) {
  char* s = zonegate::pg::pg_call([&] { return text_to_cstring(PG_GETARG_TEXT_PP(n)); });
  return std::string(s);
}

Datum text_result(const std::string& s) {
  const char* c = s.c_str();
  return zonegate::pg::pg_call([c] { return PointerGetDatum(cstring_to_text(c)); });
}

// Token lists for the jsonb document builder: "document" is well formed (keys out of jsonb's
// order, nesting, every scalar kind); the others are each malformed in one way and must be
// refused with an error, never trusted.
bool document_kind(const std::string& kind, zonegate::core::Document* doc) {
  using T = zonegate::core::DocToken;
  auto key = [](std::string_view k) { return T{T::kKey, k}; };
  if (kind == "document") {
    *doc = {{T::kBeginObject},
            key("zeta"),
            {T::kBeginArray},
            {T::kInt, {}, -42},
            {T::kBool, {}, 1},
            {T::kNull},
            {T::kString, "s \"q\""},
            {T::kBeginArray},
            {T::kEndArray},
            {T::kEndArray},
            key("a"),
            {T::kBeginObject},
            key("bb"),
            {T::kInt, {}, 9007199254740993},
            key("c"),
            {T::kString, "x"},
            {T::kEndObject},
            key("attributes"),
            {T::kAttributes},
            {T::kEndObject}};
  } else if (kind == "document_unclosed") {
    *doc = {{T::kBeginObject}, key("a"), {T::kInt, {}, 1}};
  } else if (kind == "document_stray_end") {
    *doc = {{T::kBeginObject}, {T::kEndArray}};
  } else if (kind == "document_key_twice") {
    *doc = {{T::kBeginObject}, key("a"),         {T::kInt, {}, 1},
            key("a"),          {T::kInt, {}, 2}, {T::kEndObject}};
  } else if (kind == "document_scalar") {
    *doc = {{T::kString, "x"}};
  } else if (kind == "document_trailing") {
    *doc = {{T::kBeginArray}, {T::kEndArray}, {T::kBeginArray}, {T::kEndArray}};
  } else {
    return false;
  }
  return true;
}

Datum selftest_guard_body(FunctionCallInfo fcinfo) {
  std::string kind = text_arg(fcinfo, 0);
  FrameSentinel sentinel;
  if (kind == "ok") return text_result("ok");
  zonegate::core::Document doc;
  if (document_kind(kind, &doc)) {
    return text_result(zonegate::pg::jsonb_text(zonegate::pg::jsonb_document(doc, {})));
  }
  if (kind == "cpp") throw std::runtime_error("selftest: a C++ exception");
  if (kind == "zonegate")
    throw zonegate::Error(zonegate::sqlstate::kInvalidParameterValue, "selftest: a zonegate error",
                          "the detail survives", "so does the hint");
  if (kind == "bad_alloc") throw std::bad_alloc();
  if (kind == "unknown") throw 42;
  if (kind == "pg") {
    zonegate::pg::pg_call([] {
      ereport(ERROR, (errcode(ERRCODE_RAISE_EXCEPTION),
                      errmsg("selftest: a Postgres ERROR under a C++ frame"),
                      errhint("raised by ereport inside pg_call")));
    });
  }
  if (kind == "palloc") {
    // A real failing allocation inside Postgres' allocator, not a hand-made ereport.
    zonegate::pg::pg_call([] { return palloc(MaxAllocSize + 1); });
  }
  throw zonegate::Error(zonegate::sqlstate::kInvalidParameterValue,
                        "unknown selftest kind \"" + kind + "\"", {},
                        "use ok, cpp, zonegate, bad_alloc, unknown, pg, palloc or document*");
}

Datum selftest_unwound_body(FunctionCallInfo) {
  return Int64GetDatum(g_unwound_frames);
}

}  // namespace

ZONEGATE_SQL_FUNCTION(zonegate_selftest_guard, selftest_guard_body)
ZONEGATE_SQL_FUNCTION(zonegate_selftest_unwound, selftest_unwound_body)
