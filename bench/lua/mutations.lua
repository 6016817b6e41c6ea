-- wrk script for Q5: each thread alternates drawPromptLottery (a random language of the list)
-- and transitionTree GROWING -> ABORTED_LOW_GRADE of a growing tree it knows: from the ids file
-- (its share: line i goes to thread i mod THREADS) and then the trees its own draws drew.
-- With no tree left to abort it draws again.
--   wrk -s bench/lua/mutations.lua URL -- DRAW_BODY ABORT_BODY IDS_FILE LANGS KEY THREADS
-- The bodies carry @LANG@ and @ID@. done() prints one "WRK_JSON {...}" line with the counters.

local here = debug.getinfo(1, "S").source:sub(2):match("(.*/)") or "./"
local common = dofile(here .. "common.lua")

local COUNTERS = {
  "draws_sent", "aborts_sent", "drawn", "draws_empty", "lottery_rejected",
  "applied", "rejected", "not_found", "graphql_errors", "bad_status", "unknown",
}

local threads = {}
local thread_count = 0

function setup(thread)
  thread:set("tid", thread_count)
  thread_count = thread_count + 1
  threads[#threads + 1] = thread
end

local queue, head, tail = {}, 1, 0

local function push(id)
  tail = tail + 1
  queue[tail] = id
end

local function pop()
  if head > tail then
    return nil
  end
  local id = queue[head]
  queue[head] = nil
  head = head + 1
  return id
end

function init(args)
  draw_prefix, draw_suffix = common.split_at(common.read_file(args[1]), "@LANG@")
  abort_prefix, abort_suffix = common.split_at(common.read_file(args[2]), "@ID@")
  local nthreads = tonumber(args[6])
  for i, id in ipairs(common.read_lines(args[3])) do
    if (i - 1) % nthreads == tid then
      push(id)
    end
  end
  langs = {}
  for lang in string.gmatch(args[4], "[^,]+") do
    langs[#langs + 1] = lang
  end
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  wrk.headers["Authorization"] = "Bearer " .. args[5]
  for _, name in ipairs(COUNTERS) do
    _G[name] = 0
  end
  turn = false
  math.randomseed(os.time() + 7919 * tid)
end

function request()
  turn = not turn
  if turn then
    local id = pop()
    if id then
      aborts_sent = aborts_sent + 1
      return wrk.format(nil, nil, nil, abort_prefix .. id .. abort_suffix)
    end
  end
  draws_sent = draws_sent + 1
  return wrk.format(nil, nil, nil, draw_prefix .. langs[math.random(#langs)] .. draw_suffix)
end

local function has(body, text)
  return string.find(body, text, 1, true) ~= nil
end

function response(status, headers, body)
  if status ~= 200 then
    bad_status = bad_status + 1
  elseif has(body, '"errors"') then
    graphql_errors = graphql_errors + 1
  elseif has(body, '"drawPromptLottery"') then
    if has(body, '"LotteryRejected"') then
      lottery_rejected = lottery_rejected + 1
      return
    end
    local n = 0
    local list = string.match(body, '"drawn":%[(.-)%]')
    for id in string.gmatch(list or "", '"messageTreeId":"([%x%-]+)"') do
      push(id)
      n = n + 1
    end
    if n == 0 then
      draws_empty = draws_empty + 1
    end
    drawn = drawn + n
  elseif has(body, '"TransitionApplied"') then
    applied = applied + 1
  elseif has(body, '"TransitionRejected"') then
    rejected = rejected + 1
  elseif has(body, '"TreeNotFound"') then
    not_found = not_found + 1
  else
    unknown = unknown + 1
  end
end

function done(summary, latency, requests)
  common.report(summary, latency, threads, COUNTERS)
end
