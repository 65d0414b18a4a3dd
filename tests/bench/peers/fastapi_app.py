"""The FastAPI + asyncpg peer of zonegate-proxy's GET /v1/users/{id}/context (tests/bench).

It does what the proxy does on that route with its response cache off: check the bearer JWT
(HS256, pyjwt; `exp` required, 30 s leeway, the `role` claim must be the service role), run
`SELECT zonegate.user_context_json($1)::text` on a pooled connection (asyncpg prepares it once per
connection, like the proxy), and answer the text as application/json, 404 for an unknown or
inactive user. Like the proxy, each worker process keeps verified tokens in a small cache (4,096
entries, dropped when full; ZG_BENCH_JWT_CACHE=0 verifies every request).

asyncpg's pool runs a reset query on every release (pg_advisory_unlock_all(), CLOSE ALL,
UNLISTEN *, RESET ALL: a second round trip per request). This app keeps no session state, so by
default the reset is skipped (a Connection subclass with an empty reset query), which is how a
tuned deployment would run it; ZG_BENCH_POOL_RESET=1 keeps asyncpg's default.

    ZG_BENCH_DSN=postgresql://... ZG_BENCH_JWT_SECRET=... [ZG_BENCH_POOL=4] \
    /usr/bin/python3 -m uvicorn fastapi_app:app --app-dir tests/bench/peers --workers 2 ...

GET /readyz answers 200 once the pool has run a query (the bench waits for it).
"""
import os
import time

import asyncpg
import jwt
from fastapi import FastAPI, Request
from fastapi.responses import Response

DSN = os.environ["ZG_BENCH_DSN"]
SECRET = os.environ["ZG_BENCH_JWT_SECRET"]
POOL = int(os.environ.get("ZG_BENCH_POOL", "4"))
SERVICE_ROLE = os.environ.get("ZG_BENCH_SERVICE_ROLE", "service")
TOKEN_CACHE = os.environ.get("ZG_BENCH_JWT_CACHE", "1") != "0"
POOL_RESET = os.environ.get("ZG_BENCH_POOL_RESET", "0") == "1"
LEEWAY_S = 30
CACHE_ENTRIES = 4096
SQL = "SELECT zonegate.user_context_json($1)::text"

app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)
_verified = {}  # token -> (claims, expires_at)


def _error(status, code, message, headers=None):
    body = ('{"code":"%s","message":"%s","details":null,"hint":null}' % (code, message)).encode()
    return Response(body, status_code=status, media_type="application/json", headers=headers)


def _claims(request):
    """The verified claims of the request's bearer token, or an error Response."""
    h = request.headers.get("authorization", "")
    if not h[:7].lower() == "bearer ":
        return _error(401, "missing_token", "an Authorization: Bearer token is required",
                      {"WWW-Authenticate": "Bearer"})
    token = h[7:].strip()
    now = time.time()
    if TOKEN_CACHE:
        hit = _verified.get(token)
        if hit is not None and now < hit[1]:
            return hit[0]
    try:
        claims = jwt.decode(token, SECRET, algorithms=["HS256"], leeway=LEEWAY_S,
                            options={"require": ["exp", "sub"]})
    except jwt.PyJWTError as e:
        return _error(401, "invalid_token", str(e).replace('"', "'"),
                      {"WWW-Authenticate": 'Bearer error="invalid_token"'})
    if TOKEN_CACHE:
        if len(_verified) >= CACHE_ENTRIES:
            _verified.clear()
        _verified[token] = (claims, claims["exp"] + LEEWAY_S)
    return claims


class NoResetConnection(asyncpg.Connection):
    """A pooled connection released without asyncpg's reset query (see the module doc)."""

    def _get_reset_query(self):
        return ""


@app.on_event("startup")
async def startup():
    kw = {} if POOL_RESET else {"connection_class": NoResetConnection}
    app.state.pool = await asyncpg.create_pool(DSN, min_size=POOL, max_size=POOL,
                                               server_settings={"application_name":
                                                                "zonegate-bench-fastapi"}, **kw)


@app.on_event("shutdown")
async def shutdown():
    await app.state.pool.close()


@app.get("/readyz")
async def readyz():
    async with app.state.pool.acquire() as conn:
        await conn.fetchval("SELECT 1")
    return Response(b'{"status":"ready"}', media_type="application/json")


@app.get("/v1/users/{user_id}/context")
async def user_context(user_id: str, request: Request):
    claims = _claims(request)
    if isinstance(claims, Response):
        return claims
    if claims.get("role") != SERVICE_ROLE:
        return _error(403, "forbidden", "reading another user's context needs the service role")
    async with app.state.pool.acquire() as conn:
        doc = await conn.fetchval(SQL, user_id)
    if doc is None:
        return _error(404, "user_not_found", "no active user")
    return Response(doc.encode(), media_type="application/json")
