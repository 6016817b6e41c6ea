-- Helpers shared by the benchmark's wrk scripts (loaded with dofile from the script's folder).

local common = {}

function common.read_file(path)
  local f = assert(io.open(path, "rb"))
  local data = f:read("*a")
  f:close()
  return data
end

function common.read_lines(path)
  local lines = {}
  for line in io.lines(path) do
    if #line > 0 then
      lines[#lines + 1] = line
    end
  end
  return lines
end

-- Splits a request body template at its placeholder: prefix, suffix.
function common.split_at(text, placeholder)
  local at = assert(string.find(text, placeholder, 1, true), "no " .. placeholder .. " in body")
  return string.sub(text, 1, at - 1), string.sub(text, at + #placeholder)
end

-- One line the harness parses: "WRK_JSON {...}" with wrk's summary, latency percentiles
-- (microseconds) and, when given, the scripts' own counters summed over the threads.
function common.report(summary, latency, threads, counters)
  local e = summary.errors
  local parts = {
    string.format('"requests":%.0f', summary.requests),
    string.format('"duration_us":%.0f', summary.duration),
    string.format('"bytes":%.0f', summary.bytes),
    string.format('"connect_errors":%.0f', e.connect),
    string.format('"read_errors":%.0f', e.read),
    string.format('"write_errors":%.0f', e.write),
    string.format('"status_errors":%.0f', e.status),
    string.format('"timeouts":%.0f', e.timeout),
    string.format('"mean_us":%.1f', latency.mean),
    string.format('"max_us":%.0f', latency.max),
    string.format('"p50_us":%.0f', latency:percentile(50)),
    string.format('"p90_us":%.0f', latency:percentile(90)),
    string.format('"p99_us":%.0f', latency:percentile(99)),
  }
  for _, name in ipairs(counters or {}) do
    local total = 0
    for _, thread in ipairs(threads) do
      total = total + (thread:get(name) or 0)
    end
    parts[#parts + 1] = string.format('"%s":%.0f', name, total)
  end
  io.write("WRK_JSON {" .. table.concat(parts, ",") .. "}\n")
end

return common
