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
#include "utils/numeric.h"
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

namespace {

// A palloc'd, aligned copy of stored jsonb bytes (a std::string's buffer may not be aligned for
// the container's uint32 words).
Jsonb* jsonb_copy(const std::string& bytes) {
  Jsonb* j = static_cast<Jsonb*>(palloc(bytes.size()));
  memcpy(j, bytes.data(), bytes.size());
  return j;
}

JsonbValue jsonb_string(std::string_view s) {
  JsonbValue v;
  v.type = jbvString;
  v.val.string.val = const_cast<char*>(s.data());
  v.val.string.len = static_cast<int>(s.size());
  return v;
}

// Pushes the document's tokens through pushJsonbValue (which sorts each object's keys the way
// jsonb stores them) and returns the finished value. Plain C-style code: it runs inside pg_call.
Jsonb* build_jsonb(const core::Document& doc, const std::string& attributes) {
  using core::DocToken;
  JsonbParseState* st = nullptr;
  JsonbValue* res = nullptr;
  bool in_array[16] = {false};  // per open container: array (elements) or object (values)
  int depth = 0;
  for (const DocToken& t : doc) {
    // Only a container may stand outside all others (pushJsonbValue assumes as much).
    bool opens = t.kind == DocToken::kBeginObject || t.kind == DocToken::kBeginArray;
    if (depth == 0 && (!opens || res != nullptr)) elog(ERROR, "zonegate: malformed document");
    JsonbIteratorToken scalar = depth > 0 && in_array[depth - 1] ? WJB_ELEM : WJB_VALUE;
    JsonbValue v;
    switch (t.kind) {
      case DocToken::kBeginObject:
      case DocToken::kBeginArray:
        if (depth == lengthof(in_array)) elog(ERROR, "zonegate: document nested too deeply");
        in_array[depth++] = t.kind == DocToken::kBeginArray;
        res =
            pushJsonbValue(&st, in_array[depth - 1] ? WJB_BEGIN_ARRAY : WJB_BEGIN_OBJECT, nullptr);
        break;
      case DocToken::kEndObject:
      case DocToken::kEndArray:
        --depth;
        res = pushJsonbValue(&st, t.kind == DocToken::kEndArray ? WJB_END_ARRAY : WJB_END_OBJECT,
                             nullptr);
        break;
      case DocToken::kKey:
        v = jsonb_string(t.text);
        res = pushJsonbValue(&st, WJB_KEY, &v);
        break;
      case DocToken::kString:
        v = jsonb_string(t.text);
        res = pushJsonbValue(&st, scalar, &v);
        break;
      case DocToken::kNull:
        v.type = jbvNull;
        res = pushJsonbValue(&st, scalar, &v);
        break;
      case DocToken::kBool:
        v.type = jbvBool;
        v.val.boolean = t.number != 0;
        res = pushJsonbValue(&st, scalar, &v);
        break;
      case DocToken::kInt:
        v.type = jbvNumeric;
        v.val.numeric = int64_to_numeric(t.number);
        res = pushJsonbValue(&st, scalar, &v);
        break;
      case DocToken::kAttributes:
        if (attributes.empty()) {
          pushJsonbValue(&st, WJB_BEGIN_OBJECT, nullptr);
          res = pushJsonbValue(&st, WJB_END_OBJECT, nullptr);
        } else {
          Jsonb* a = jsonb_copy(attributes);
          v.type = jbvBinary;  // pushJsonbValue unpacks it
          v.val.binary.data = &a->root;
          v.val.binary.len = static_cast<int>(VARSIZE(a) - VARHDRSZ);
          res = pushJsonbValue(&st, scalar, &v);
        }
        break;
    }
  }
  if (res == nullptr || depth != 0) elog(ERROR, "zonegate: incomplete document");
  return JsonbValueToJsonb(res);
}

}  // namespace

std::string jsonb_document(const core::Document& doc, const std::string& attributes_jsonb) {
  struct Out {
    const char* data;
    size_t len;
  };
  Out out = pg_call([&doc, &attributes_jsonb] {
    Jsonb* j = build_jsonb(doc, attributes_jsonb);
    return Out{reinterpret_cast<const char*>(j), static_cast<size_t>(VARSIZE(j))};
  });
  return std::string(out.data, out.len);
}

std::string jsonb_text(const std::string& jsonb) {
  const char* text = pg_call([&jsonb] {
    Jsonb* j = jsonb_copy(jsonb);
    return JsonbToCString(nullptr, &j->root, static_cast<int>(VARSIZE(j)));
  });
  return std::string(text);
}

}  // namespace zonegate::pg
