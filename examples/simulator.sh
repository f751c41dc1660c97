#!/usr/bin/env bash
# Drives a running gateway-sim by hand, signing each call the way the gateway document says:
# md5 over "k1=v1&...&key=SECRET" (fields in the documented order), lowercase hex.
# Start the simulator first (`make demo`), then: examples/simulator.sh
set -euo pipefail
GW=${GW:-http://127.0.0.1:9090}
APP_KEY=${APP_KEY:-sim_app_key}
SECRET=${SECRET:-sim_secret_key}
CALLBACK=${CALLBACK:-http://127.0.0.1:8081/callbacks}
mrn_suffix=$(date +%s)

sign() { printf '%s&key=%s' "$1" "$SECRET" | md5sum | cut -d' ' -f1; }

echo "== deposit via the web API"
mrn="D-$mrn_suffix"
s=$(sign "amount=100.50&appKey=$APP_KEY&callbackUrl=$CALLBACK/deposit&channelId=2&mrn=$mrn&returnUrl=https://shop.example/return")
curl -sS "$GW/api/Pay/Create" -H 'Content-Type: application/json' \
  -d "{\"amount\":100.50,\"appKey\":\"$APP_KEY\",\"callbackUrl\":\"$CALLBACK/deposit\",\"channelId\":2,\"mrn\":\"$mrn\",\"returnUrl\":\"https://shop.example/return\",\"sign\":\"$s\"}"
echo
echo "== pay it (control API), then query"
curl -sS -X POST "$GW/_sim/deposits/$mrn/pay" -d '{"amount":"99.98"}'; echo
curl -sS "$GW/api/Payments/Query?appKey=$APP_KEY&mrn=$mrn&sign=$(sign "appKey=$APP_KEY&mrn=$mrn")&callback=false"; echo

echo "== payout"
pmrn="P-$mrn_suffix"
s=$(sign "accountName=Zhang San&accountNumber=6222020200112233445&amount=500&appKey=$APP_KEY&bankName=ICBC&callbackUrl=$CALLBACK/payout&mrn=$pmrn")
curl -sS "$GW/api/Payouts/Create" -H 'Content-Type: application/json' \
  -d "{\"accountName\":\"Zhang San\",\"accountNumber\":\"6222020200112233445\",\"amount\":500,\"appKey\":\"$APP_KEY\",\"bankName\":\"ICBC\",\"callbackUrl\":\"$CALLBACK/payout\",\"mrn\":\"$pmrn\",\"sign\":\"$s\"}"
echo
curl -sS "$GW/api/Payouts/Query?appKey=$APP_KEY&mrn=$pmrn&sign=$(sign "appKey=$APP_KEY&mrn=$pmrn")"; echo
echo "== callback attempts so far (nothing listens on $CALLBACK unless you run a receiver)"
curl -sS "$GW/_sim/callbacks"; echo
