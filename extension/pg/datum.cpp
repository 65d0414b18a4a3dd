// Datum conversions; see datum.hpp.
#include "pg/datum.hpp"

#include <algorithm>
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
    if (count == 0) return PointerGetDatum(construct_empty_array(INT8OID));  // '{}': no dims
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
    // An empty array has no dimensions, so it equals '{}' (a 1-D array of length 0 does not).
    if (n == 0) return PointerGetDatum(construct_empty_array(INT8OID));
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

// The attributes jsonb as a JsonbValue tree, unpacked by pushJsonbValue (which knows every
// container and raw-scalar form) as the one element of a scratch array.
void attributes_value(const std::string& attributes, JsonbValue* out) {
  if (attributes.empty()) {
    out->type = jbvObject;
    out->val.object.nPairs = 0;
    out->val.object.pairs = nullptr;
    return;
  }
  Jsonb* a = jsonb_copy(attributes);
  JsonbValue bin;
  bin.type = jbvBinary;
  bin.val.binary.data = &a->root;
  bin.val.binary.len = static_cast<int>(VARSIZE(a) - VARHDRSZ);
  JsonbParseState* st = nullptr;
  pushJsonbValue(&st, WJB_BEGIN_ARRAY, nullptr);
  pushJsonbValue(&st, WJB_ELEM, &bin);
  JsonbValue* arr = pushJsonbValue(&st, WJB_END_ARRAY, nullptr);
  *out = arr->val.array.elems[0];
}

// jsonb's order of object keys (lengthCompareJsonbStringValue): shorter first, then bytewise.
bool key_before(const JsonbValue& x, const JsonbValue& y) {
  if (x.val.string.len != y.val.string.len) return x.val.string.len < y.val.string.len;
  return memcmp(x.val.string.val, y.val.string.val, static_cast<size_t>(x.val.string.len)) < 0;
}

struct TreeBuild {
  const core::Document* doc;
  size_t pos;
  const std::string* attributes;
};

// Room for one more element in a palloc'd array of `cap` elements holding `n`.
template <typename T>
T* room_for_one(T* items, int n, int* cap) {
  if (n < *cap) return items;
  *cap *= 2;
  return static_cast<T*>(repalloc(items, sizeof(T) * static_cast<size_t>(*cap)));
}

const core::DocToken& next_token(TreeBuild* b) {
  if (b->pos >= b->doc->size()) elog(ERROR, "zonegate: incomplete document");
  return (*b->doc)[b->pos++];
}

// Reads one value (a scalar or a whole container) from the tokens into `out`. Objects get their
// keys sorted as jsonb stores them, which JsonbValueToJsonb requires. pushJsonbValue does the
// same with growing arrays and a qsort per object: a document cost 25,000 instructions that way,
// 15,000 this way (a ninth of a user_context miss saved). Plain C-style code: it runs inside
// pg_call.
void tree_value(TreeBuild* b, int depth, JsonbValue* out) {
  using core::DocToken;
  if (depth > 16) elog(ERROR, "zonegate: document nested too deeply");
  const DocToken& t = next_token(b);
  switch (t.kind) {
    case DocToken::kBeginObject: {
      int n = 0, cap = 8;
      JsonbPair* pairs = static_cast<JsonbPair*>(palloc(sizeof(JsonbPair) * cap));
      for (;;) {
        const DocToken& k = next_token(b);
        if (k.kind == DocToken::kEndObject) break;
        if (k.kind != DocToken::kKey) elog(ERROR, "zonegate: malformed document");
        pairs = room_for_one(pairs, n, &cap);
        pairs[n].key = jsonb_string(k.text);
        pairs[n].order = static_cast<uint32>(n);
        tree_value(b, depth + 1, &pairs[n].value);
        ++n;
      }
      // std::sort neither allocates nor throws here (trivial pairs, a plain comparison), so it
      // may run in this frame; for a dozen keys it is an inlined insertion sort, where
      // Postgres' qsort cost four times as much.
      std::sort(pairs, pairs + n,
                [](const JsonbPair& x, const JsonbPair& y) { return key_before(x.key, y.key); });
      for (int i = 1; i < n; ++i) {
        if (!key_before(pairs[i - 1].key, pairs[i].key))
          elog(ERROR, "zonegate: malformed document (a key twice)");
      }
      out->type = jbvObject;
      out->val.object.nPairs = n;
      out->val.object.pairs = pairs;
      return;
    }
    case DocToken::kBeginArray: {
      int n = 0, cap = 8;
      JsonbValue* elems = static_cast<JsonbValue*>(palloc(sizeof(JsonbValue) * cap));
      for (;;) {
        if (b->pos < b->doc->size() && (*b->doc)[b->pos].kind == DocToken::kEndArray) {
          ++b->pos;
          break;
        }
        elems = room_for_one(elems, n, &cap);
        tree_value(b, depth + 1, &elems[n++]);
      }
      out->type = jbvArray;
      out->val.array.nElems = n;
      out->val.array.elems = elems;
      out->val.array.rawScalar = false;
      return;
    }
    case DocToken::kString:
      *out = jsonb_string(t.text);
      return;
    case DocToken::kNull:
      out->type = jbvNull;
      return;
    case DocToken::kBool:
      out->type = jbvBool;
      out->val.boolean = t.number != 0;
      return;
    case DocToken::kInt:
      out->type = jbvNumeric;
      out->val.numeric = int64_to_numeric(t.number);
      return;
    case DocToken::kAttributes:
      attributes_value(*b->attributes, out);
      return;
    case DocToken::kKey:
    case DocToken::kEndObject:
    case DocToken::kEndArray:
      break;
  }
  elog(ERROR, "zonegate: malformed document");
}

// The document as jsonb: a JsonbValue tree made straight from the tokens, then serialised.
Jsonb* build_jsonb(const core::Document& doc, const std::string& attributes) {
  TreeBuild b{&doc, 0, &attributes};
  JsonbValue root;
  tree_value(&b, 0, &root);
  if (root.type != jbvObject && root.type != jbvArray)
    elog(ERROR, "zonegate: malformed document (a scalar at the top)");
  if (b.pos != doc.size()) elog(ERROR, "zonegate: malformed document (tokens after the end)");
  return JsonbValueToJsonb(&root);
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
