-- wrk script for tests/bench/run.sh: POSTs one chat request per call and checks
-- every answer carries all the tokens the fake Ollama sends.
-- Environment: BENCH_PATH (default /v1/chat/completions), BENCH_MODEL,
-- BENCH_STREAM (1 = "stream": true), BENCH_FORMAT (sse | ndjson | json),
-- BENCH_TOKENS (the fake's --tokens; its answer is " w0 w1 ... w<N-1>"),
-- BENCH_KEY (an API key sent as Authorization: Bearer; unset = none).
-- done() prints one line "BENCH key=value ..." that run.sh parses.

local stream = os.getenv("BENCH_STREAM") == "1"
local format = os.getenv("BENCH_FORMAT") or (stream and "sse" or "json")
local tokens = tonumber(os.getenv("BENCH_TOKENS") or "32")
local model = os.getenv("BENCH_MODEL") or "llama3.2"

wrk.method = "POST"
wrk.path = os.getenv("BENCH_PATH") or "/v1/chat/completions"
wrk.headers["Content-Type"] = "application/json"
if os.getenv("BENCH_KEY") and os.getenv("BENCH_KEY") ~= "" then
  wrk.headers["Authorization"] = "Bearer " .. os.getenv("BENCH_KEY")
end
wrk.body = string.format(
  '{"model":"%s","stream":%s,"messages":[{"role":"user","content":"Say something."}]}',
  model, stream and "true" or "false")

-- The whole answer of a non-streamed request, as one string.
local parts = {}
for i = 0, tokens - 1 do parts[#parts + 1] = " w" .. i end
local whole = table.concat(parts)
local last = '" w' .. (tokens - 1) .. '"'

local threads = {}

function setup(thread)
  threads[#threads + 1] = thread
end

function init(args)
  ok, bad, badstatus, sample = 0, 0, 0, ""
end

local function valid(body)
  if format == "json" then
    return string.find(body, whole, 1, true) ~= nil
  end
  -- streamed: one delta per token, in order, then the end marker
  local n = 0
  for _ in string.gmatch(body, '" w%d+"') do n = n + 1 end
  if n ~= tokens or not string.find(body, last, 1, true) then return false end
  if format == "sse" then
    return string.find(body, "data: [DONE]", 1, true) ~= nil
  end
  return string.find(body, '"done":true', 1, true) ~= nil
end

function response(status, headers, body)
  if status ~= 200 then
    badstatus = badstatus + 1
    bad = bad + 1
    if sample == "" then sample = status .. " " .. string.sub(body or "", 1, 200) end
  elseif valid(body) then
    ok = ok + 1
  else
    bad = bad + 1
    if sample == "" then sample = "200 " .. string.sub(body or "", 1, 300) end
  end
end

function done(summary, latency, requests)
  local o, b, bs, s = 0, 0, 0, ""
  for _, t in ipairs(threads) do
    o = o + t:get("ok")
    b = b + t:get("bad")
    bs = bs + t:get("badstatus")
    if s == "" then s = t:get("sample") or "" end
  end
  local e = summary.errors
  io.write(string.format(
    "BENCH requests=%d duration_us=%d p50_us=%d p99_us=%d ok=%d bad=%d bad_status=%d " ..
    "err_connect=%d err_read=%d err_write=%d err_timeout=%d\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    o, b, bs, e.connect, e.read, e.write, e.timeout))
  if s ~= "" then
    io.write("BENCH_SAMPLE " .. string.gsub(s, "\n", "\\n") .. "\n")
  end
end
