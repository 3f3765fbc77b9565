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

function init(args)
   local path = os.getenv("SMSTRACK_BENCH_UA_FILE")
   assert(path and path ~= "", "SMSTRACK_BENCH_UA_FILE is not set")
   local f = assert(io.open(path, "r"))
   for line in f:lines() do
      line = line:gsub("^%s+", ""):gsub("%s+$", "")
      if line ~= "" and line:sub(1, 1) ~= "#" then
         n = n + 1
         reqs[n] = wrk.format("GET", wrk.path, {
            ["User-Agent"] = line,
            ["Accept"] = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
            ["Accept-Language"] = "en-US,en;q=0.9",
         })
      end
   end
   f:close()
   assert(n > 0, "no user agents in " .. path)
   -- With $SMSTRACK_BENCH_PATHS_FILE (recipients' own links), the requests go to
   -- those paths in turn, each path twice per cycle with two different agents.
   local paths_file = os.getenv("SMSTRACK_BENCH_PATHS_FILE")
   if paths_file and paths_file ~= "" then
      local agents = {}
      for k = 1, n do agents[k] = reqs[k] end
      local uas = {}
      f = assert(io.open(path, "r"))
      for line in f:lines() do
         line = line:gsub("^%s+", ""):gsub("%s+$", "")
         if line ~= "" and line:sub(1, 1) ~= "#" then uas[#uas + 1] = line end
      end
      f:close()
      local paths = {}
      local pf = assert(io.open(paths_file, "r"))
      for line in pf:lines() do
         if line ~= "" then paths[#paths + 1] = line end
      end
      pf:close()
      assert(#paths > 0, "no paths in " .. paths_file)
      reqs = {}
      n = 0
      for cycle = 0, 1 do
         for k = 1, #paths do
            n = n + 1
            reqs[n] = wrk.format("GET", paths[k], {
               ["User-Agent"] = uas[((k - 1) + cycle * 7) % #uas + 1],
               ["Accept"] = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
               ["Accept-Language"] = "en-US,en;q=0.9",
            })
         end
      end
   end
   -- With $SMSTRACK_BENCH_ADDRESSES, one request per address, the agents in turn.
   local addresses = tonumber(os.getenv("SMSTRACK_BENCH_ADDRESSES") or "0") or 0
   if addresses > 0 and not (paths_file and paths_file ~= "") then
      local uas = {}
      f = assert(io.open(path, "r"))
      for line in f:lines() do
         line = line:gsub("^%s+", ""):gsub("%s+$", "")
         if line ~= "" and line:sub(1, 1) ~= "#" then uas[#uas + 1] = line end
      end
      f:close()
      reqs = {}
      for k = 1, addresses do
         reqs[k] = wrk.format("GET", wrk.path, {
            ["User-Agent"] = uas[(k - 1) % #uas + 1],
            ["Accept"] = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
            ["Accept-Language"] = "en-US,en;q=0.9",
            ["X-Forwarded-For"] = string.format("10.%d.%d.%d", math.floor(k / 65536) % 256, math.floor(k / 256) % 256, k % 256),
         })
      end
      n = addresses
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
