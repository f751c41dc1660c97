-- Signed payout callbacks for wrk, one line per body in the file given after --; each thread walks its own
-- share so no two requests carry the same mrn.
local bodies = {}
local threads = 0
local index, stride

function setup(thread)
  threads = threads + 1
  thread:set("tid", threads)
end

function init(args)
  for line in io.lines(args[1]) do bodies[#bodies + 1] = line end
  index = (tid or 1) - 1
  stride = tonumber(args[2] or "2")
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
end

function request()
  index = index + stride
  return wrk.format(nil, nil, nil, bodies[(index % #bodies) + 1])
end
