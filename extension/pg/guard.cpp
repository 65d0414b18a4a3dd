// Implementation of the C/C++ boundary guards; see guard.hpp.
#include <cstring>
#include <new>

#include "core/error.hpp"

extern "C" {
#include "postgres.h"
#include "fmgr.h"
#include "utils/elog.h"
#include "utils/memutils.h"
}

#include "pg/guard.hpp"

namespace zonegate::pg {

namespace {

// A plain, trivially destructible copy of a C++ exception: it must outlive the catch block and
// the C++ frames, and nothing here may allocate while an exception is in flight.
// Deliberately without initialisers: it lives in invoke_cpp's frame on every call (the per-row
// RLS path too), and zeroing 2.5 KB there cost 15% of a can_access_current call. clear() runs
// only once something was thrown.
struct CapturedError {
  int sqlstate;
  char message[1024];
  char detail[1024];
  char hint[512];
  void clear() noexcept {
    sqlstate = ERRCODE_INTERNAL_ERROR;
    message[0] = detail[0] = hint[0] = '\0';
  }
};

void copy_text(char* dst, size_t cap, const char* src) noexcept {
  if (src == nullptr) return;
  size_t n = strnlen(src, cap - 1);
  memcpy(dst, src, n);
  dst[n] = '\0';
}

int sqlstate_code(const char* s) noexcept {
  if (s == nullptr || strlen(s) != 5) return ERRCODE_INTERNAL_ERROR;
  return MAKE_SQLSTATE(s[0], s[1], s[2], s[3], s[4]);
}

[[noreturn]] void raise_captured(const CapturedError& e) {
  ereport(ERROR,
          (errcode(e.sqlstate), errmsg("%s", e.message),
           e.detail[0] ? errdetail("%s", e.detail) : 0, e.hint[0] ? errhint("%s", e.hint) : 0));
  pg_unreachable();
}

}  // namespace

const char* PgException::what() const noexcept {
  return (edata_ != nullptr && edata_->message != nullptr) ? edata_->message : "postgres error";
}

void run_guarded(void (*fn)(void*), void* arg) {
  MemoryContext caller_cxt = CurrentMemoryContext;
  ErrorData* volatile edata = nullptr;  // assigned after the longjmp
  PG_TRY();
  { fn(arg); }
  PG_CATCH();
  {
    // Copy the error out of ErrorContext before flushing it; the copy lives in the caller's
    // context and is rethrown unchanged by invoke_cpp().
    MemoryContextSwitchTo(caller_cxt);
    edata = CopyErrorData();
    FlushErrorState();
  }
  PG_END_TRY();
  if (edata != nullptr) throw PgException(edata);
}

Datum invoke_cpp(Datum (*body)(FunctionCallInfo), FunctionCallInfo fcinfo, bool takes_nulls) {
  if (!takes_nulls) {
    // A body that reads its arguments as values answers NULL for a NULL argument, whatever the
    // SQL declaration says: a function declared without STRICT by mistake (or by an old
    // install script) must not read a NULL as a pointer.
    for (int i = 0; i < fcinfo->nargs; ++i) {
      if (fcinfo->args[i].isnull) {
        fcinfo->isnull = true;
        return 0;
      }
    }
  }
  ErrorData* pg_error = nullptr;
  CapturedError captured;
  try {
    return body(fcinfo);
  } catch (const PgException& e) {
    pg_error = e.edata();
  } catch (const zonegate::Error& e) {
    captured.clear();
    captured.sqlstate = sqlstate_code(e.sqlstate());
    copy_text(captured.message, sizeof captured.message, e.what());
    copy_text(captured.detail, sizeof captured.detail, e.detail().c_str());
    copy_text(captured.hint, sizeof captured.hint, e.hint().c_str());
  } catch (const std::bad_alloc&) {
    captured.clear();
    captured.sqlstate = ERRCODE_OUT_OF_MEMORY;
    copy_text(captured.message, sizeof captured.message, "out of memory in zonegate");
  } catch (const std::exception& e) {
    captured.clear();
    copy_text(captured.message, sizeof captured.message, "zonegate internal error: ");
    size_t used = strlen(captured.message);
    copy_text(captured.message + used, sizeof captured.message - used, e.what());
  } catch (...) {
    captured.clear();
    copy_text(captured.message, sizeof captured.message,
              "zonegate internal error: unknown C++ exception");
  }
  // Every C++ frame of the body has unwound by now; raising the ERROR (a longjmp) is safe.
  if (pg_error != nullptr) ReThrowError(pg_error);
  raise_captured(captured);
}

void invoke_cpp_callback(const char* what, void (*fn)(void*), void* arg) noexcept {
  CapturedError captured;
  captured.clear();
  bool failed = false;
  try {
    fn(arg);
  } catch (const std::exception& e) {
    failed = true;
    copy_text(captured.message, sizeof captured.message, e.what());
  } catch (...) {
    failed = true;
    copy_text(captured.message, sizeof captured.message, "unknown C++ exception");
  }
  if (failed) elog(WARNING, "zonegate: %s failed: %s", what, captured.message);
}

}  // namespace zonegate::pg
