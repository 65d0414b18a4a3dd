-- wrk script for one fixed request (the cache-hit and overhead benchmarks): the URL and the
-- Authorization header come from wrk's command line (-H); this script only adds the
-- machine-readable summary line of report.lua. Defining no request() keeps wrk on its fast
-- path (the request bytes are built once per connection, no Lua per request).
--
--   wrk -t1 -c64 -d10s --latency -H 'Authorization: Bearer JWT' -s static.lua URL
local dir = (debug.getinfo(1, "S").source:match("^@(.*/)") or "./")
dofile(dir .. "report.lua")
