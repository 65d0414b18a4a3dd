// GET / on the public listener: the /rpc functions as PostgREST 12 describes them at its root,
// an OpenAPI 2.0 (Swagger) document built from the catalog (a path per function, GET with one
// query parameter per argument, POST with a JSON body of the arguments), pointing to the full
// OpenAPI 3 document at /openapi.json. docs/API.md, "The OpenAPI root".
#pragma once

#include <string>
#include <string_view>

#include "api/catalog.hpp"

namespace zonegate::api {

// The Swagger 2.0 document of the callable functions in `cat` (schema `schema`), sorted by name.
std::string rpc_swagger(const Catalog& cat, const std::string& schema);

// The Swagger type PostgREST gives a PostgreSQL type (format_type's spelling): "integer",
// "number", "string", "boolean", "array", or "" for json/jsonb (any JSON value).
std::string_view swagger_type(std::string_view pg_type);

// Whether an Accept header allows the root's document: absent, or naming
// application/openapi+json, application/json or a wildcard that covers one (not with q=0).
bool accepts_openapi(const std::string* accept);

}  // namespace zonegate::api
