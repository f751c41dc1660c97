-- POST bodies for wrk. Against pay-sidecar every request carries a new mrn (a repeated mrn would be answered
-- from the journal without a gateway call); against the stub and the nginx hop the gateway's own body is sent.
-- Arguments (after --): kind (payout|deposit), target (sidecar|gateway), run nonce.
local counter = 0
local threads = 0
local kind, target, prefix

-- The bodies, `%s` standing for the mrn: the sidecar's plain JSON, or what the sidecar sends the gateway.
local bodies = {
  sidecar = {
    payout = '{"mrn":"%s","amount":500,"bankName":"ICBC","accountName":"Zhang San","accountNumber":"6222020200112233445"}',
    deposit = '{"mrn":"%s","amount":"100.50","channelId":2,"returnUrl":"https://shop.example/return"}',
  },
  gateway = {
    payout = '{"accountName":"Zhang San","accountNumber":"6222020200112233445","amount":500,"appKey":"bench","bankName":"ICBC","callbackUrl":"http://127.0.0.1:19104/callbacks/payout","mrn":"%s","sign":"0123456789abcdef0123456789abcdef"}',
    deposit = '{"amount":"100.50","appKey":"bench","callbackUrl":"http://127.0.0.1:19104/callbacks/deposit","channelId":2,"mrn":"%s","returnUrl":"https://shop.example/return","sign":"0123456789abcdef0123456789abcdef"}',
  },
}

function setup(thread)
  threads = threads + 1
  thread:set("tid", threads)
end

function init(args)
  kind = args[1] or "payout"
  target = args[2] or "sidecar"
  prefix = string.format("%s-%s-%d-", kind == "payout" and "P" or "D", args[3] or "0", tid or 0)
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
end

function request()
  counter = counter + 1
  local mrn = prefix .. counter
  return wrk.format(nil, nil, nil, string.format(bodies[target][kind], mrn))
end
