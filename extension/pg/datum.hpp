// Conversions between Postgres datums and C++ values, each one guarded (pg_call), so C++ code
// never calls an ereport-ing function directly. Include after postgres.h is not needed: this
// header only uses forward-declared types.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/context.hpp"
#include "pg/guard.hpp"

namespace zonegate::pg {

// Argument n as text, copied out of the (possibly toasted) datum.
std::string text_arg(FunctionCallInfo fcinfo, int n);
// Argument n as a bigint[]; NULL elements are skipped. Errors on multidimensional arrays.
std::vector<int64_t> int8_array_arg(FunctionCallInfo fcinfo, int n);
bool arg_is_null(FunctionCallInfo fcinfo, int n);
// Argument n as a float8[]; NULL elements become NaN. Errors on multidimensional arrays.
std::vector<double> float8_array_arg(FunctionCallInfo fcinfo, int n);

// Results: palloc'd in the function's memory context.
Datum text_datum(std::string_view s);
Datum int8_array_datum(const std::vector<int64_t>& values);
// A bigint[] with NULLs where a value is absent.
Datum nullable_int8_array_datum(const std::vector<std::optional<int64_t>>& values);
// A copy of stored varlena bytes (e.g. a cached jsonb value).
Datum varlena_copy(const std::string& bytes);
// A document as jsonb varlena bytes (for caching), built as one JsonbValue tree and serialised
// once; kAttributes is the jsonb `attributes_jsonb` (an empty object when empty). A malformed
// token list is an ERROR.
std::string jsonb_document(const core::Document& doc, const std::string& attributes_jsonb);
// Stored jsonb varlena bytes as JSON text, the way jsonb_out prints them.
std::string jsonb_text(const std::string& jsonb);

}  // namespace zonegate::pg
