-- wrk script used by bench/run.py.
-- * request(): rotates through the user agents in $SMSTRACK_BENCH_UA_FILE, one per request
--   (requests are pre-formatted in init(), so the hook costs one table lookup); with
--   $SMSTRACK_BENCH_PATHS_FILE, through those paths too.
-- * with $SMSTRACK_BENCH_ADDRESSES = N > 0, the requests come from N client addresses in
--   turn (X-Forwarded-For, 10.0.0.1 onwards): many phones rather than one flooding host.
-- * response(): counts responses by status code (the redirect must answer 302).
-- * done(): prints one line "SMSTRACK_BENCH_RESULT {json}" with counts, errors and latency
--   percentiles in microseconds, for run.py to parse.
-- wrk never follows redirects, so each request measures exactly one redirect response.

local threads = {}
local next_tid = 0

function setup(thread)
   thread:set("tid", next_tid)
   next_tid = next_tid + 1
   table.insert(threads, thread)
end

local reqs = {}
local n = 0
local i = 0
statuses = {}  -- global: read back from each thread in done()

local function read_lines(path, skip_comments)
   local lines = {}
   local f = assert(io.open(path, "r"))
   for line in f:lines() do
      line = line:gsub("^%s+", ""):gsub("%s+$", "")
      if line ~= "" and not (skip_comments and line:sub(1, 1) == "#") then lines[#lines + 1] = line end
   end
   f:close()
   return lines
end

local function add_request(path, ua, address)
   n = n + 1
   reqs[n] = wrk.format("GET", path, {
      ["User-Agent"] = ua,
      ["Accept"] = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
      ["Accept-Language"] = "en-US,en;q=0.9",
      ["X-Forwarded-For"] = address,
   })
end

function init(args)
   local path = os.getenv("SMSTRACK_BENCH_UA_FILE")
   assert(path and path ~= "", "SMSTRACK_BENCH_UA_FILE is not set")
   local uas = read_lines(path, true)
   assert(#uas > 0, "no user agents in " .. path)
   local paths_file = os.getenv("SMSTRACK_BENCH_PATHS_FILE")
   local addresses = tonumber(os.getenv("SMSTRACK_BENCH_ADDRESSES") or "0") or 0
   if paths_file and paths_file ~= "" then
      -- Recipients' own links: the requests go to those paths in turn, each
      -- path twice per cycle with two different agents.
      local paths = read_lines(paths_file, false)
      assert(#paths > 0, "no paths in " .. paths_file)
      for cycle = 0, 1 do
         for k = 1, #paths do
            add_request(paths[k], uas[((k - 1) + cycle * 7) % #uas + 1])
         end
      end
   elseif addresses > 0 then
      -- One request per address, the agents in turn.
      for k = 1, addresses do
         add_request(wrk.path, uas[(k - 1) % #uas + 1], string.format(
            "10.%d.%d.%d", math.floor(k / 65536) % 256, math.floor(k / 256) % 256, k % 256))
      end
   else
      for k = 1, #uas do add_request(wrk.path, uas[k]) end
   end
   -- threads start at different points of the pool
   i = ((tid or 0) * 101) % n
end

function request()
   i = i + 1
   if i > n then i = 1 end
   return reqs[i]
end

function response(status, headers, body)
   statuses[status] = (statuses[status] or 0) + 1
end

function done(summary, latency, requests)
   local agg = {}
   for _, t in ipairs(threads) do
      local s = t:get("statuses")
      if s then
         for code, count in pairs(s) do
            agg[code] = (agg[code] or 0) + count
         end
      end
   end
   local parts = {}
   for code, count in pairs(agg) do
      parts[#parts + 1] = string.format('"%d":%d', code, count)
   end
   local e = summary.errors
   io.write(string.format(
      'SMSTRACK_BENCH_RESULT {"requests":%d,"duration_us":%d,"bytes":%d,' ..
      '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
      '"latency_us":{"min":%d,"mean":%.1f,"stdev":%.1f,"max":%d,' ..
      '"p50":%d,"p75":%d,"p90":%d,"p99":%d,"p999":%d},"status":{%s}}\n',
      summary.requests, summary.duration, summary.bytes,
      e.connect, e.read, e.write, e.status, e.timeout,
      latency.min, latency.mean, latency.stdev, latency.max,
      latency:percentile(50), latency:percentile(75), latency:percentile(90),
      latency:percentile(99), latency:percentile(99.9),
      table.concat(parts, ",")))
end
