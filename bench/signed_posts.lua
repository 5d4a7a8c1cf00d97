-- wrk script for bench/webhook_throughput.py: POSTs pre-signed Gather results, each one once.
-- Arguments (after --): FILE OFFSET THREADS. FILE has one request a line: path<TAB>signature<TAB>body.
-- Thread k of THREADS sends lines OFFSET+k, OFFSET+k+THREADS, ... so no two requests repeat
-- until the file is used up (then it wraps; the bench reports that as replays).

local next_id = 0
local requests = {}
local position = 0
local stride = 1

function setup(thread)
  thread:set("id", next_id)
  next_id = next_id + 1
end

function init(args)
  for line in io.lines(args[1]) do
    local path, signature, body = line:match("^([^\t]*)\t([^\t]*)\t(.*)$")
    requests[#requests + 1] = wrk.format("POST", path, {
      ["Content-Type"] = "application/x-www-form-urlencoded",
      ["X-Twilio-Signature"] = signature,
    }, body)
  end
  stride = tonumber(args[3] or "1")
  position = tonumber(args[2] or "0") + id
end

function request()
  local chosen = requests[(position % #requests) + 1]
  position = position + stride
  return chosen
end
