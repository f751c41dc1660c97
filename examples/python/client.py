#!/usr/bin/env python3
"""A client of pay-sidecar's internal API with the standard library only: a deposit, a payout, two queries.

SIDECAR_URL (default http://127.0.0.1:8080) and, if the sidecar requires one, PAYSIDECAR_API_TOKEN.
"""
import json
import os
import sys
import time
import urllib.error
import urllib.request

API = os.environ.get("SIDECAR_URL", "http://127.0.0.1:8080").rstrip("/")
TOKEN = os.environ.get("PAYSIDECAR_API_TOKEN")


def call(method, path, body=None):
    """Returns (status, decoded JSON). Errors are application/problem+json with a stable `code`."""
    headers = {"Accept": "application/json"}
    if TOKEN:
        headers["Authorization"] = f"Bearer {TOKEN}"
    data = None
    if body is not None:
        data = json.dumps(body, ensure_ascii=False).encode()
        headers["Content-Type"] = "application/json"
    request = urllib.request.Request(API + path, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as error:
        return error.code, json.load(error)


def create(path, body):
    """Creates an order. An unknown outcome (the gateway may or may not have it) is retried with the SAME
    body: the sidecar journals every mrn, so the retry answers the recorded outcome instead of paying twice."""
    for attempt in range(3):
        status, answer = call("POST", path, body)
        if status < 500 or answer.get("orderStatus") != "unknown":
            break
        time.sleep(2 ** attempt)
    print(f"POST {path} -> {status} {json.dumps(answer, ensure_ascii=False)}")
    if status >= 300:
        raise SystemExit(f"{answer.get('code')}: {answer.get('detail')}")
    return answer


def main():
    run = f"{int(time.time())}-{os.getpid()}"
    create("/v1/deposits", {"mrn": f"D-py-{run}", "amount": "100.50", "channelId": 2, "returnUrl": "https://shop.example/return"})
    # Amounts are strings or integers, never floats: "100.50" is signed exactly as written.
    create("/v1/payouts", {"mrn": f"P-py-{run}", "amount": 500, "bankName": "中国工商银行", "accountName": "张三",
                           "accountNumber": "6222020200112233445"})
    for path in (f"/v1/deposits/D-py-{run}", f"/v1/payouts/P-py-{run}"):
        status, answer = call("GET", path)
        print(f"GET {path} -> {status} {json.dumps(answer, ensure_ascii=False)}")
        if status != 200:
            sys.exit(1)


if __name__ == "__main__":
    main()
