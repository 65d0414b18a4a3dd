-- wrk script: GET a user's context for user ids drawn from a file, uniformly or Zipf-like.
--
--   wrk -t2 -c8 -d10s --latency -s context.lua http://127.0.0.1:PORT -- \
--       ids=FILE dist=zipf|uniform [s=1.1] [seed=42] [n=COUNT] \
--       [path=/v1/users/%s/context] [tokens=FILE]
--
-- ids: one user id per line; line k is user number k (generate_users.sql's numbering, so users
--   1..10 are the sees_all admins). n: use only the first n lines (default: all).
-- dist=uniform: every line equally likely (pgbench's random(1, n)).
-- dist=zipf: line k with probability k^-s / H(n, s), by binary search in the precomputed
--   cumulative distribution: the same distribution as pgbench's random_zipfian(1, n, s).
-- path: the request path, %s replaced by the drawn id (default /v1/users/%s/context, which needs
--   the service token: pass it with -H 'Authorization: Bearer JWT').
-- tokens: one JWT per line, line k for user k: each request then carries the drawn user's own
--   token (use with path=/v1/me/context; the -H Authorization header is replaced).
-- seed: each wrk thread seeds its generator with seed + thread number, so runs are repeatable
--   and threads draw different sequences.
--
-- Formatted requests are memoised per user (a hot user's request is built once per thread).
-- done() prints wrk's summary as one "WRK_JSON {...}" line (report.lua).
local dir = (debug.getinfo(1, "S").source:match("^@(.*/)") or "./")
dofile(dir .. "report.lua")

local counter = 0
function setup(thread)
  counter = counter + 1
  thread:set("thread_no", counter)
end

local ids, tokens, cdf, memo = {}, nil, nil, {}
local n, dist, path = 0, "uniform", "/v1/users/%s/context"

local function read_lines(file, limit)
  local out = {}
  local f = assert(io.open(file, "r"), "cannot open " .. file)
  for line in f:lines() do
    if line ~= "" then out[#out + 1] = line end
    if limit and #out >= limit then break end
  end
  f:close()
  return out
end

function init(args)
  local opt = {}
  for _, a in ipairs(args) do
    local k, v = a:match("^([%w_]+)=(.*)$")
    assert(k, "arguments are key=value, got " .. a)
    opt[k] = v
  end
  local limit = opt.n and tonumber(opt.n) or nil
  ids = read_lines(assert(opt.ids, "ids=FILE is required"), limit)
  n = #ids
  assert(n > 0, "no ids in " .. opt.ids)
  if opt.tokens then
    tokens = read_lines(opt.tokens, n)
    assert(#tokens == n, "tokens file has fewer lines than ids")
  end
  dist = opt.dist or "uniform"
  path = opt.path or path
  if dist == "zipf" then
    local s = tonumber(opt.s or "1.1")
    cdf = {}
    local total = 0
    for k = 1, n do
      total = total + k ^ (-s)
      cdf[k] = total
    end
    for k = 1, n do cdf[k] = cdf[k] / total end
  elseif dist ~= "uniform" then
    error("dist must be zipf or uniform, got " .. dist)
  end
  math.randomseed(tonumber(opt.seed or "42") + (thread_no or 0))
end

local function draw()
  if not cdf then return math.random(n) end
  local u = math.random()
  local lo, hi = 1, n
  while lo < hi do
    local mid = math.floor((lo + hi) / 2)
    if cdf[mid] < u then lo = mid + 1 else hi = mid end
  end
  return lo
end

function request()
  local k = draw()
  local r = memo[k]
  if r == nil then
    local p = path:gsub("%%s", ids[k])
    if tokens then
      local h = {}
      for name, value in pairs(wrk.headers) do h[name] = value end
      h["Authorization"] = "Bearer " .. tokens[k]
      r = wrk.format("GET", p, h)
    else
      r = wrk.format("GET", p)
    end
    memo[k] = r
  end
  return r
end
