-- wrk script for one fixed request sent DEPTH at a time in one write (HTTP/1.1 pipelining; the
-- overhead benchmark's cheaper client): the URL and the Authorization header come from wrk's
-- command line (-H), the depth from the script's argument (default 4).
--
--   wrk -t1 -c64 -d10s -H 'Authorization: Bearer JWT' -s pipeline.lua URL -- 4
local dir = (debug.getinfo(1, "S").source:match("^@(.*/)") or "./")
dofile(dir .. "report.lua")

local batch

function init(args)
  local depth = tonumber(args[1] or "4") or 4
  local r = {}
  for i = 1, depth do
    r[i] = wrk.format(nil, wrk.path)
  end
  batch = table.concat(r)
end

function request()
  return batch
end
