-- wrk script for one fixed POST: the JSON body comes from the WRK_BODY environment variable,
-- the URL and the Authorization header from wrk's command line; prints report.lua's summary.
--
--   WRK_BODY='{"name":"x"}' wrk -t1 -c32 -d8s -H 'Authorization: Bearer JWT' -s post.lua URL
local dir = (debug.getinfo(1, "S").source:match("^@(.*/)") or "./")
wrk.method = "POST"
wrk.body = os.getenv("WRK_BODY") or "{}"
wrk.headers["Content-Type"] = "application/json"
dofile(dir .. "report.lua")
