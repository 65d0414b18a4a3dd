-- wrk script: POST /v1/me/zones/filter with a random zone id each time, so every request is a
-- new cache key and goes to Postgres (the uncached database path). The token comes from -H.
--
--   wrk -t2 -c16 -d10s -s filter.lua http://127.0.0.1:PORT -H 'Authorization: Bearer JWT'
--
-- done() prints wrk's summary as one "WRK_JSON {...}" line (report.lua); non-2xx answers are
-- counted in errors.status.
local dir = (debug.getinfo(1, "S").source:match("^@(.*/)") or "./")
dofile(dir .. "report.lua")

function init(args)
  math.randomseed(os.time() + math.floor(os.clock() * 1e6))
end

local headers = nil

function request()
  if headers == nil then
    -- wrk.format's headers replace wrk.headers (-H): copy them, Authorization included.
    headers = {}
    for k, v in pairs(wrk.headers) do headers[k] = v end
    headers["Content-Type"] = "application/json"
  end
  local body = string.format('{"zones":[%d]}', math.random(1, 1000000000))
  return wrk.format("POST", "/v1/me/zones/filter", headers, body)
end
