// zonegate._selftest_guard(kind): proves the boundary guards work in a live backend. Each kind
// raises one sort of failure from C++ code; the regression suite checks the SQL error it becomes
// and that the backend keeps serving. Not granted to PUBLIC.
#include <cstdint>
#include <new>
#include <stdexcept>
#include <string>

#include "core/error.hpp"

extern "C" {
#include "postgres.h"
#include "fmgr.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
}

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

Datum selftest_guard_body(FunctionCallInfo fcinfo) {
  std::string kind = text_arg(fcinfo, 0);
  FrameSentinel sentinel;
  if (kind == "ok") return text_result("ok");
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
                        "use ok, cpp, zonegate, bad_alloc, unknown, pg or palloc");
}

Datum selftest_unwound_body(FunctionCallInfo) {
  return Int64GetDatum(g_unwound_frames);
}

}  // namespace

ZONEGATE_SQL_FUNCTION(zonegate_selftest_guard, selftest_guard_body)
ZONEGATE_SQL_FUNCTION(zonegate_selftest_unwound, selftest_unwound_body)
