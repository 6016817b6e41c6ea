-- wrk script for the polling phase: GETs the URL, revalidating with If-None-Match as a
-- dashboard does.   wrk -s bench/lua/poll.lua URL -- ETAG
local here = debug.getinfo(1, "S").source:sub(2):match("(.*/)") or "./"
local common = dofile(here .. "common.lua")

local threads = {}

function setup(thread)
  threads[#threads + 1] = thread
end

function init(args)
  wrk.method = "GET"
  wrk.headers["Accept"] = "application/json"
  if args[1] and #args[1] > 0 then
    wrk.headers["If-None-Match"] = args[1]
  end
end

function done(summary, latency, requests)
  common.report(summary, latency, threads, {})
end
