#!/usr/bin/env python3
"""Receives pay-sidecar's webhooks and verifies their Standard Webhooks signatures (standard library only).

WEBHOOK_SECRET: the sidecar's PAYSIDECAR_WEBHOOK_SECRET (whsec_...). HOST and PORT: where to listen
(default 127.0.0.1 and 8082).
Point the sidecar at it with PAYSIDECAR_WEBHOOK_URL=http://127.0.0.1:8082/webhooks.
"""
import base64
import hashlib
import hmac
import json
import os
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SECRET = base64.b64decode(os.environ["WEBHOOK_SECRET"].removeprefix("whsec_"))
TOLERANCE = 5 * 60  # seconds: older or newer timestamps are refused (replays)
seen = set()  # webhook-id: delivery is at least once, so handle each event once (use your database in production)


def verify(headers, body):
    """Raises ValueError unless one of the signatures matches. During a secret rotation the sidecar sends two
    (new and previous), space-separated; any one that matches is enough."""
    msg_id, timestamp, signatures = headers.get("webhook-id"), headers.get("webhook-timestamp"), headers.get("webhook-signature")
    if not (msg_id and timestamp and signatures):
        raise ValueError("missing webhook headers")
    if abs(time.time() - int(timestamp)) > TOLERANCE:
        raise ValueError("timestamp outside the tolerance")
    expected = base64.b64encode(hmac.new(SECRET, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()).decode()
    for signature in signatures.split(" "):
        version, _, value = signature.partition(",")
        if version == "v1" and hmac.compare_digest(value, expected):
            return json.loads(body)
    raise ValueError("no matching signature")


class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        try:
            event = verify(self.headers, body)
        except ValueError as error:
            print(f"refused: {error}", flush=True)
            self.send_response(400)
            self.end_headers()
            return
        msg_id = self.headers["webhook-id"]
        if msg_id in seen:
            print(f"duplicate {msg_id}, already handled", flush=True)
        else:
            seen.add(msg_id)
            data = event["data"]
            print(f"verified {event['type']} mrn={data['mrn']} amount={data['amount']} source={data.get('source')} id={msg_id}", flush=True)
        self.send_response(204)  # any 2xx within the timeout counts as delivered
        self.end_headers()

    def log_message(self, *args):
        pass


if __name__ == "__main__":
    host, port = os.environ.get("HOST", "127.0.0.1"), int(os.environ.get("PORT", "8082"))
    server = ThreadingHTTPServer((host, port), Handler)
    print(f"listening on http://{host}:{port}/webhooks", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        sys.exit(0)
