#!/usr/bin/env bash
# A client of pay-sidecar's internal API with curl only: create a deposit and a payout, then query both.
# SIDECAR_URL (default http://127.0.0.1:8080) and, if the sidecar requires one, PAYSIDECAR_API_TOKEN.
set -euo pipefail
api=${SIDECAR_URL:-http://127.0.0.1:8080}
auth=()
[ -n "${PAYSIDECAR_API_TOKEN:-}" ] && auth=(-H "Authorization: Bearer $PAYSIDECAR_API_TOKEN")
run=$(date +%s)-$$

# POST JSON; retry an answer whose outcome is unknown (orderStatus "unknown") with the SAME body:
# the sidecar journals every mrn, so a retry can never create a second order.
post() {
  local path=$1 body=$2 attempt status
  for attempt in 1 2 3; do
    status=$(curl -sS -o /tmp/pay-sidecar-example.$$ -w '%{http_code}' "${auth[@]}" \
      -H 'Content-Type: application/json' -H "X-Request-Id: example-$run-$attempt" -d "$body" "$api$path")
    if [ "$status" -lt 500 ] || ! grep -q '"orderStatus":"unknown"' /tmp/pay-sidecar-example.$$; then break; fi
    sleep $((attempt * 2))
  done
  echo "POST $path -> $status $(cat /tmp/pay-sidecar-example.$$)"
  rm -f /tmp/pay-sidecar-example.$$
  [ "$status" -lt 300 ]
}

get() {
  local body
  body=$(curl -sS --fail-with-body "${auth[@]}" "$api$1")
  echo "GET $1 -> $body"
}

post /v1/deposits "{\"mrn\":\"D-sh-$run\",\"amount\":\"100.50\",\"channelId\":2,\"returnUrl\":\"https://shop.example/return\"}"
post /v1/payouts "{\"mrn\":\"P-sh-$run\",\"amount\":500,\"bankName\":\"中国工商银行\",\"accountName\":\"张三\",\"accountNumber\":\"6222020200112233445\"}"
get "/v1/deposits/D-sh-$run"
get "/v1/payouts/P-sh-$run"
