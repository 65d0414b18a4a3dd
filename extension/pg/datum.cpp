// Datum conversions; see datum.hpp.
#include "pg/datum.hpp"

#include <cmath>
#include <cstring>
#include <memory>

extern "C" {
#include "postgres.h"
#include "fmgr.h"
#include "catalog/pg_type_d.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
}

namespace zonegate::pg {

bool arg_is_null(FunctionCallInfo fcinfo, int n) {
  return PG_ARGISNULL(n);
}

std::string text_arg(FunctionCallInfo fcinfo, int n) {
  struct Out {
    const char* data;
    int len;
  };
  Out out = pg_call([&] {
    text* t = PG_GETARG_TEXT_PP(n);
    return Out{VARDATA_ANY(t), static_cast<int>(VARSIZE_ANY_EXHDR(t))};
  });
  return std::string(out.data, static_cast<size_t>(out.len));
}

namespace {

// The elements of a one-dimensional array of an 8-byte pass-by-value type (int8, float8).
struct ArrayElems {
  Datum* elems;
  bool* nulls;
  int count;
};

ArrayElems array8_arg(FunctionCallInfo fcinfo, int n, Oid elemtype, const char* what) {
  return pg_call([&] {
    ArrayType* arr = PG_GETARG_ARRAYTYPE_P(n);
    if (ARR_NDIM(arr) > 1) {
      ereport(ERROR,
              (errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR), errmsg("%s must be one-dimensional", what)));
    }
    ArrayElems o{nullptr, nullptr, 0};
    deconstruct_array(arr, elemtype, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE, &o.elems, &o.nulls,
                      &o.count);
    return o;
  });
}

}  // namespace

std::vector<int64_t> int8_array_arg(FunctionCallInfo fcinfo, int n) {
  ArrayElems out = array8_arg(fcinfo, n, INT8OID, "zone id array");
  std::vector<int64_t> v;
  v.reserve(static_cast<size_t>(out.count));
  for (int i = 0; i < out.count; ++i) {
    if (!out.nulls[i]) v.push_back(DatumGetInt64(out.elems[i]));
  }
  return v;
}

std::vector<double> float8_array_arg(FunctionCallInfo fcinfo, int n) {
  ArrayElems out = array8_arg(fcinfo, n, FLOAT8OID, "coordinate arrays");
  std::vector<double> v(static_cast<size_t>(out.count));
  for (int i = 0; i < out.count; ++i) {
    v[static_cast<size_t>(i)] = out.nulls[i] ? std::nan("") : DatumGetFloat8(out.elems[i]);
  }
  return v;
}

Datum nullable_int8_array_datum(const std::vector<std::optional<int64_t>>& values) {
  std::vector<Datum> datums(values.size());
  // bool[] for Postgres: std::vector<bool> is packed.
  std::unique_ptr<bool[]> nulls(new bool[values.size() + 1]);
  for (size_t i = 0; i < values.size(); ++i) {
    nulls[i] = !values[i].has_value();
    datums[i] = nulls[i] ? 0 : Int64GetDatum(*values[i]);
  }
  Datum* d = datums.data();
  bool* np = nulls.get();
  int count = static_cast<int>(values.size());
  return pg_call([d, np, count] {
    int dims[1] = {count};
    int lbs[1] = {1};
    return PointerGetDatum(
        construct_md_array(d, np, 1, dims, lbs, INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
  });
}

Datum text_datum(std::string_view s) {
  const char* p = s.data();
  int len = static_cast<int>(s.size());
  return pg_call([p, len] { return PointerGetDatum(cstring_to_text_with_len(p, len)); });
}

Datum int8_array_datum(const std::vector<int64_t>& values) {
  const int64_t* data = values.data();
  int n = static_cast<int>(values.size());
  return pg_call([data, n] {
    // Built directly: one allocation, no per-element Datum array (visible_zones can be large).
    Size bytes = ARR_OVERHEAD_NONULLS(1) + sizeof(int64) * static_cast<Size>(n);
    ArrayType* arr = static_cast<ArrayType*>(palloc0(bytes));
    SET_VARSIZE(arr, bytes);
    arr->ndim = 1;
    arr->dataoffset = 0;
    arr->elemtype = INT8OID;
    *ARR_DIMS(arr) = n;
    *ARR_LBOUND(arr) = 1;
    if (n > 0) memcpy(ARR_DATA_PTR(arr), data, sizeof(int64) * static_cast<size_t>(n));
    return PointerGetDatum(arr);
  });
}

Datum varlena_copy(const std::string& bytes) {
  const char* p = bytes.data();
  size_t n = bytes.size();
  return pg_call([p, n] {
    void* copy = palloc(n);
    memcpy(copy, p, n);
    return PointerGetDatum(copy);
  });
}

std::string jsonb_bytes(const std::string& json) {
  const char* text = json.c_str();
  struct Out {
    const char* data;
    size_t len;
  };
  Out out = pg_call([text] {
    Jsonb* j = DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum(text)));
    return Out{reinterpret_cast<const char*>(j), static_cast<size_t>(VARSIZE(j))};
  });
  return std::string(out.data, out.len);
}

}  // namespace zonegate::pg
