-- Rotates wrk over a precomputed list of requests read from a data file.
-- Usage: wrk -s rotate.lua URL -- <requests.tsv> [bodyBytes]
-- Each line of the data file is "METHOD<TAB>HOST<TAB>PATH", optionally "<TAB>Name: value|Name: value" (extra
-- headers); an empty HOST keeps wrk's default.
-- Requests are formatted once in init() so request() only returns a prebuilt string: the load
-- generator shares a core with the upstream and must stay cheap.

local requests = {}
local count = 0
local next_index = 0

function init(args)
  local file = args[1]
  if file == nil then error("rotate.lua needs a requests file argument") end
  local body_bytes = tonumber(args[2] or "0") or 0
  local body = nil
  if body_bytes > 0 then body = string.rep("x", body_bytes) end
  for line in io.lines(file) do
    local method, host, path, extra = line:match("^(%S+)\t(%S*)\t([^\t]+)\t?(.*)$")
    if method ~= nil then
      local headers = {}
      if host ~= "" then headers["Host"] = host end
      -- Optional fourth field: "Name: value|Name: value".
      for name, value in (extra or ""):gmatch("([^:|]+):%s*([^|]*)") do headers[name] = value end
      if body ~= nil then headers["Content-Type"] = "application/octet-stream" end
      count = count + 1
      requests[count] = wrk.format(method, path, headers, body)
    end
  end
  if count == 0 then error("no requests in " .. file) end
end

function request()
  next_index = next_index % count + 1
  return requests[next_index]
end

-- One machine-readable line for the harness; latency values are microseconds.
function done(summary, latency, requests_stats)
  local e = summary.errors
  io.write(string.format(
    "WRK_JSON {\"requests\":%d,\"duration_us\":%d,\"bytes\":%d,\"p50_us\":%d,\"p99_us\":%d,\"max_us\":%d," ..
    "\"connect\":%d,\"read\":%d,\"write\":%d,\"status\":%d,\"timeout\":%d}\n",
    summary.requests, summary.duration, summary.bytes,
    latency:percentile(50), latency:percentile(99), latency.max,
    e.connect, e.read, e.write, e.status, e.timeout))
end
