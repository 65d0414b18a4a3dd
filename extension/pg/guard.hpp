// The two guards of the C/C++ boundary (docs/ARCHITECTURE.md, "The C/C++ boundary"), in the style
// of pg_duckdb:
//
//  * invoke_cpp() runs the C++ body of a SQL-callable function. Whatever it throws is caught,
//    the C++ frames unwind, and only then is a Postgres ERROR raised. A C++ exception never
//    reaches Postgres.
//  * pg_call() runs a piece of Postgres code (anything that can ereport: palloc, SPI, syscache,
//    detoast) from C++ code. A Postgres ERROR (a longjmp) is caught right there and rethrown as a
//    PgException, so it unwinds C++ frames with destructors properly. The callable itself must be
//    C-style: it may not own objects with destructors while it calls into Postgres.
//
// This header is free of postgres.h on purpose (its macros break the STL); it sees forward
// declarations only.
#pragma once

#include <cstdint>
#include <exception>
#include <type_traits>
#include <utility>

extern "C" {
struct FunctionCallInfoBaseData;
struct ErrorData;
}

namespace zonegate::pg {

using Datum = std::uintptr_t;
using FunctionCallInfo = FunctionCallInfoBaseData*;

// A Postgres ERROR caught by pg_call(), carried through C++ frames. invoke_cpp() rethrows the
// original ErrorData, so SQLSTATE, detail, hint and context survive the trip.
class PgException : public std::exception {
 public:
  explicit PgException(ErrorData* edata) noexcept : edata_(edata) {}
  const char* what() const noexcept override;
  ErrorData* edata() const noexcept { return edata_; }

 private:
  ErrorData* edata_;
};

// Runs fn(arg) under PG_TRY; on ERROR copies and flushes the error, then throws PgException.
void run_guarded(void (*fn)(void*), void* arg);

// Calls a Postgres-side callable, turning an ERROR into a PgException. Results must be trivially
// destructible (Datum, pointers, ints): nothing with a destructor lives across the longjmp.
template <typename F>
auto pg_call(F&& f) -> decltype(f()) {
  using Fn = std::remove_reference_t<F>;
  using R = decltype(f());
  if constexpr (std::is_void_v<R>) {
    run_guarded([](void* p) { (*static_cast<Fn*>(p))(); }, &f);
  } else {
    static_assert(std::is_trivially_destructible_v<R>,
                  "pg_call results cross a longjmp; they must be trivially destructible");
    struct Frame {
      Fn* fn;
      R result;
    } frame{&f, R{}};
    run_guarded(
        [](void* p) {
          auto* fr = static_cast<Frame*>(p);
          fr->result = (*fr->fn)();
        },
        &frame);
    return frame.result;
  }
}

// Runs the C++ body of a SQL function; see the file comment. Unless takes_nulls, a call with a
// NULL argument returns NULL without running the body (STRICT, enforced here too).
Datum invoke_cpp(Datum (*body)(FunctionCallInfo), FunctionCallInfo fcinfo, bool takes_nulls);

// Runs a C++ callback that Postgres calls (relcache callbacks, hooks): it must not throw into
// Postgres, so exceptions are logged as WARNING and swallowed.
void invoke_cpp_callback(const char* what, void (*fn)(void*), void* arg) noexcept;

}  // namespace zonegate::pg

// Declares a SQL-callable C entry point `name` whose C++ body is `body`; a NULL argument
// answers NULL without calling it.
#define ZONEGATE_SQL_FUNCTION(name, body) ZONEGATE_SQL_ENTRY(name, body, false)
// The same for a body that gives NULL arguments a meaning and checks each one itself.
#define ZONEGATE_SQL_FUNCTION_TAKING_NULLS(name, body) ZONEGATE_SQL_ENTRY(name, body, true)
#define ZONEGATE_SQL_ENTRY(name, body, takes_nulls)             \
  extern "C" {                                                  \
  PG_FUNCTION_INFO_V1(name);                                    \
  PGDLLEXPORT Datum name(PG_FUNCTION_ARGS) {                    \
    return zonegate::pg::invoke_cpp(body, fcinfo, takes_nulls); \
  }                                                             \
  }
