-- wrk script for the read queries: POSTs a GraphQL request body read from a file.
-- With an ids file, each request puts a random id from it in place of @ID@ in the body.
--   wrk -s bench/lua/graphql.lua URL -- BODY_FILE [IDS_FILE]
-- done() prints one "WRK_JSON {...}" line for the harness.

local here = debug.getinfo(1, "S").source:sub(2):match("(.*/)") or "./"
local common = dofile(here .. "common.lua")

local threads = {}
local thread_count = 0

function setup(thread)
  thread:set("tid", thread_count)
  thread_count = thread_count + 1
  threads[#threads + 1] = thread
end

function init(args)
  local body = common.read_file(args[1])
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  if args[2] then
    local ids = common.read_lines(args[2])
    local prefix, suffix = common.split_at(body, "@ID@")
    math.randomseed(os.time() + 7919 * tid)
    request = function()
      return wrk.format(nil, nil, nil, prefix .. ids[math.random(#ids)] .. suffix)
    end
  else
    wrk.body = body
  end
end

function done(summary, latency, requests)
  common.report(summary, latency, threads, {})
end
