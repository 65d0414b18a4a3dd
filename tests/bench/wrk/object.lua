-- wrk script for one fixed GET asking for a single object, as postgrest-js' .single() does
-- (Accept: application/vnd.pgrst.object+json); the URL and Authorization come from the command
-- line; prints report.lua's summary.
local dir = (debug.getinfo(1, "S").source:match("^@(.*/)") or "./")
wrk.headers["Accept"] = "application/vnd.pgrst.object+json"
dofile(dir .. "report.lua")
