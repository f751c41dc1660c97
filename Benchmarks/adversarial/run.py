#!/usr/bin/env python3
"""The adversarial ("bank-style") run: the money-safety promises of pay-sidecar measured end to end.

Only the real binaries, on loopback: `gateway-sim` and `pay-sidecar serve` from `swift build`, a fresh SQLite
database in a temporary folder, and a Standard Webhooks receiver in this process. Python 3 standard library only.

    python3 Benchmarks/adversarial/run.py --seed A --payouts 300 --deposits 200 --callers 8 --kills 2

What happens:
  * careful callers (threads) create payouts and deposits and retry every unknown outcome with the identical
    body (an answer with "orderStatus":"unknown", a 409 request_in_progress, or no answer at all); a 2xx or a
    problem without orderStatus unknown is final. They also poll GET /v1/{kind}/{mrn};
  * before creates, a seeded RNG injects gateway faults through the simulator's /_sim/faults: answers after the
    sidecar's timeout (delay), connections dropped after processing (drop), 5xx (status), garbage, an
    undocumented refusal (system_busy) with and without the order booked (answer, processed_answer), and a
    gateway whose mrn check is not atomic (hold: the create is booked, but visible to queries and to the mrn
    check only later; a second create meanwhile is booked too). Queries get 5xx, garbage, late answers,
    dropped connections and system_busy;
  * a settler pays (the ordered or another amount), fails or completes every order the simulator books, after
    a seeded delay, some with callback faults (drop, duplicate, delay, bad_signature);
  * the sidecar is SIGKILLed --kills times mid-run (while creates are in flight) and restarted on the same
    database;
  * signed callbacks for mrns nobody created are posted to the callback listener;
  * then it waits for quiescence and computes, from the simulator's ground truth, the rows below (the goal:
    0 in every row), with supporting counts. Exit code 1 if any row is not 0.

Rows:
  double payouts                  payouts the simulator booked more than once for one mrn
  settlements never told          orders the simulator settled (paid/failed) for mrns the callers created,
                                  with no webhook telling that outcome (*.succeeded / *.failed, or a *.flagged
                                  event whose data.orderStatus says so)
  silent amount differences       settlement events whose data.amount is not null and differs from what the
                                  simulator paid, with no flag (data.flag absent and no *.flagged event for it)
  plain refusals, payout exists   callers' final answers that were refusals (a problem without orderStatus
                                  unknown) for payouts the simulator booked
  plain events for ghost mrns     *.succeeded / *.failed events for a (kind, mrn) no caller created
"""
import argparse
import base64
import hashlib
import hmac
import http.client as httpclient
import json
import os
import queue
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import urllib.error
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
APP_KEY = "adv_app"
SECRET = "adv-merchant-secret"
WEBHOOK_SECRET = "whsec_" + base64.b64encode(b"adversarial-webhook-secret-32by").decode()

# The sidecar's timings: short, so a run takes minutes. A hold (the gateway's non-atomic mrn check) lasts
# longer than the gateway timeout plus a query (so a query sees object_not_found while the first send is still
# being processed) and shorter than RESEND_AFTER (so the order rules must wait it out).
GATEWAY_TIMEOUT = "1s"
RECONCILE_AFTER = "300ms"
RESEND_AFTER = "5s"
HOLD_RANGE = (1.5, 3.5)
LATE_ANSWER_RANGE = (1.3, 2.5)

OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))
START = time.monotonic()


def log(message):
    print(f"[{time.monotonic() - START:7.1f}s] {message}", file=sys.stderr, flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http(method, url, body=None, headers=None, timeout=10.0):
    """(status, parsed JSON or text) for any answer; raises OSError when there is no answer at all."""
    data = None
    headers = dict(headers or {})
    if body is not None:
        if isinstance(body, (dict, list)):
            data = json.dumps(body, ensure_ascii=False).encode()
            headers.setdefault("Content-Type", "application/json")
        else:
            data = body.encode() if isinstance(body, str) else body
    request = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with OPENER.open(request, timeout=timeout) as response:
            status, raw = response.status, response.read()
    except urllib.error.HTTPError as error:
        status, raw = error.code, error.read()
    except urllib.error.URLError as error:
        raise OSError(str(error.reason)) from error
    except (TimeoutError, ConnectionError, httpclient.HTTPException) as error:
        raise OSError(str(error)) from error
    text = raw.decode("utf-8", "replace")
    try:
        return status, json.loads(text) if text else None
    except ValueError:
        return status, text


def md5_sign(pairs):
    text = "&".join(f"{k}={v}" for k, v in pairs) + f"&key={SECRET}"
    return hashlib.md5(text.encode()).hexdigest()


def fen(text):
    """An amount in yuan text as integer fen (None for None)."""
    if text is None:
        return None
    whole, _, frac = str(text).partition(".")
    return int(whole or "0") * 100 + int((frac + "00")[:2])


def yuan(fen_value):
    return f"{fen_value // 100}.{fen_value % 100:02d}"


# ---------------------------------------------------------------------------------------------------------
# Processes


class Proc:
    def __init__(self, name, argv, env, log_path):
        self.name, self.argv, self.env, self.log_path = name, argv, env, log_path
        self.process = None

    def start(self):
        out = open(self.log_path, "ab")
        self.process = subprocess.Popen(self.argv, env=self.env, stdout=out, stderr=out, start_new_session=True)
        out.close()

    def kill(self):
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()

    def stop(self, timeout=20):
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.send_signal(signal.SIGKILL)
                self.process.wait()
        return self.process.returncode if self.process else None


def wait_http(url, timeout=60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            status, _ = http("GET", url, timeout=1.0)
            if status == 200:
                return True
        except OSError:
            pass
        time.sleep(0.05)
    return False


# ---------------------------------------------------------------------------------------------------------
# The webhook receiver: verifies Standard Webhooks signatures, records every event, deduplicates on webhook-id.


class Receiver:
    def __init__(self, seed):
        self.lock = threading.Lock()
        self.events = {}  # webhook-id -> event (first copy)
        self.order = []  # ids in arrival order
        self.requests = 0
        self.redeliveries = 0  # the same id again (retries after a lost answer, or a refused attempt)
        self.bad_signatures = 0
        self.refused_on_purpose = 0
        self.mismatched_copies = 0  # the same id with another body: never allowed
        self.rng = random.Random(f"{seed}/receiver")
        self.key = base64.b64decode(WEBHOOK_SECRET[len("whsec_"):])

    def verify(self, headers, body):
        wid, ts, sig = headers.get("webhook-id"), headers.get("webhook-timestamp"), headers.get("webhook-signature")
        if not (wid and ts and sig):
            return False
        signed = f"{wid}.{ts}.".encode() + body
        expected = base64.b64encode(hmac.new(self.key, signed, hashlib.sha256).digest()).decode()
        for part in sig.split(" "):
            version, _, value = part.partition(",")
            if version == "v1" and hmac.compare_digest(value, expected):
                return True
        return False

    def handle(self, headers, body):
        with self.lock:
            self.requests += 1
            if not self.verify(headers, body):
                self.bad_signatures += 1
                return 401
            # A careful consumer answers 5xx now and then (its own trouble): the sidecar must retry.
            if self.rng.random() < 0.03:
                self.refused_on_purpose += 1
                return 503
            wid = headers["webhook-id"]
            payload = json.loads(body)
            if wid in self.events:
                self.redeliveries += 1
                if self.events[wid]["raw"] != body:
                    self.mismatched_copies += 1
                return 204
            self.events[wid] = {"id": wid, "type": payload.get("type"), "data": payload.get("data") or {}, "raw": body,
                                "at": time.monotonic() - START}
            self.order.append(wid)
            return 204

    def serve(self, port):
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                headers = {k.lower(): v for k, v in self.headers.items()}
                status = receiver.handle(headers, body)
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def snapshot(self):
        with self.lock:
            return [self.events[i] for i in self.order]


# ---------------------------------------------------------------------------------------------------------
# The run


class Run:
    def __init__(self, args):
        self.args = args
        self.seed = args.seed
        self.rng = random.Random(f"{args.seed}/plan")
        self.work = tempfile.mkdtemp(prefix=f"adv-{args.seed}-")
        self.bin_dir = args.bin_dir if os.path.isabs(args.bin_dir) else (
            os.path.join(os.getcwd(), args.bin_dir) if os.path.exists(os.path.join(os.getcwd(), args.bin_dir))
            else os.path.join(ROOT, args.bin_dir))
        self.ports = {name: free_port() for name in ("sim", "api", "callbacks", "hooks")}
        self.sim_url = f"http://127.0.0.1:{self.ports['sim']}"
        self.api_url = f"http://127.0.0.1:{self.ports['api']}"
        self.cb_url = f"http://127.0.0.1:{self.ports['callbacks']}"
        self.receiver = Receiver(args.seed)
        self.lock = threading.Lock()
        self.stop_faults = threading.Event()
        self.callers_done = threading.Event()
        self.settler_stop = threading.Event()
        self.started_orders = 0
        self.sidecar_up = threading.Event()
        self.faults = {}  # "path kind" -> count injected
        self.kills = []
        self.ghosts = []  # posted ghost callbacks: kind, mrn, answers
        self.settled_by_harness = {}  # mrn -> action
        self.callback_faults = {}
        self.errors = []
        self.plans = self.make_plans()

    # -- plans (all drawn from the seeded RNG up front, so a seed fixes every decision) --

    def make_plans(self):
        rng, seed = self.rng, self.seed
        plans = []
        for i in range(self.args.payouts):
            plans.append({"kind": "payout", "mrn": f"P-{seed}-{i:04d}", "body": {
                "mrn": f"P-{seed}-{i:04d}", "amount": rng.randint(1, 2000), "bankName": "中国工商银行", "accountName": "张三",
                "accountNumber": "6222" + "".join(rng.choice("0123456789") for _ in range(15))}})
        for i in range(self.args.deposits):
            amount = rng.randint(100, 500_000)
            text = yuan(amount) if rng.random() < 0.7 else str(amount // 100 or 1)
            plans.append({"kind": "deposit", "mrn": f"D-{seed}-{i:04d}", "body": {
                "mrn": f"D-{seed}-{i:04d}", "amount": text, "channelId": rng.randint(1, 15),
                "returnUrl": "https://shop.example/return?o=1&lang=zh"}})
        rng.shuffle(plans)
        for plan in plans:
            plan["fault"] = self.create_fault(plan["kind"]) if rng.random() < self.args.fault_rate else None
            plan["query_fault"] = self.query_fault(rng) if rng.random() < self.args.query_fault_rate else None
            plan["settle"] = self.settle_plan(plan)
            plan["think"] = rng.uniform(0.0, 0.25)
            plan["poll"] = rng.random() < 0.35
        return plans

    def create_fault(self, kind):
        rng = self.rng
        path = "/api/Payouts/Create" if kind == "payout" else "/api/Pay/Create"
        busy = {"error": "system_busy", "errorMessage": "system busy, try again later"} if kind == "payout" else \
            {"success": False, "errorMsg": "system_busy: try again later", "payUrl": None}
        choice = rng.choices(["delay", "drop", "status", "garbage", "answer", "processed_answer", "hold"],
                             weights=[3, 3, 2, 2, 2, 2, 4])[0]
        fault = {"path": path, "kind": choice, "count": 1}
        if choice == "delay":
            fault["value"] = f"{int(rng.uniform(*LATE_ANSWER_RANGE) * 1000)}ms"
        elif choice == "hold":
            fault["value"] = f"{int(rng.uniform(*HOLD_RANGE) * 1000)}ms"
        elif choice == "status":
            fault["value"] = rng.choice([500, 502, 503])
        elif choice in ("answer", "processed_answer"):
            fault["value"] = busy
        return fault

    def settle_plan(self, plan):
        rng = self.rng
        late = rng.random() < 0.1
        delay = rng.uniform(15, 40) if late else rng.uniform(0.2, 8.0)
        if plan["kind"] == "payout":
            action = "complete" if rng.random() < 0.8 else "fail"
            amount = None
        else:
            r = rng.random()
            action = "pay" if r < 0.85 else "fail"
            amount = None
            if action == "pay" and r >= 0.65:
                ordered = fen(plan["body"]["amount"])
                amount = yuan(max(1, ordered + rng.choice([-1, 1]) * rng.randint(1, max(1, ordered // 3))))
        cb = rng.random()
        callback_fault = None
        if action != "fail":
            if cb < 0.12:
                callback_fault = {"path": "callback", "kind": "drop", "count": 1}
            elif cb < 0.22:
                callback_fault = {"path": "callback", "kind": "duplicate", "count": 1}
            elif cb < 0.32:
                callback_fault = {"path": "callback", "kind": "delay", "value": f"{int(rng.uniform(1, 6) * 1000)}ms", "count": 1}
            elif cb < 0.37:
                callback_fault = {"path": "callback", "kind": "bad_signature", "count": 1}
        return {"delay": delay, "action": action, "amount": amount, "callback_fault": callback_fault}

    # -- processes --

    def sidecar_env(self):
        env = {k: v for k, v in os.environ.items() if not k.startswith("PAYSIDECAR_") and "proxy" not in k.lower()}
        env.update({
            "PAYSIDECAR_GATEWAY_URL": self.sim_url,
            "PAYSIDECAR_APP_KEY": APP_KEY,
            "PAYSIDECAR_SECRET_KEY": SECRET,
            "PAYSIDECAR_PUBLIC_URL": self.cb_url,
            "PAYSIDECAR_LISTEN": f"127.0.0.1:{self.ports['api']}",
            "PAYSIDECAR_CALLBACK_LISTEN": f"127.0.0.1:{self.ports['callbacks']}",
            "PAYSIDECAR_DATABASE_URL": f"sqlite://{self.work}/ledger.db",
            "PAYSIDECAR_WEBHOOK_URL": f"http://127.0.0.1:{self.ports['hooks']}/hooks",
            "PAYSIDECAR_WEBHOOK_SECRET": WEBHOOK_SECRET,
            "PAYSIDECAR_WEBHOOK_RETRY_SCHEDULE": "200ms,500ms,1s,2s,3s,5s,5s,5s,5s,5s,5s,5s",
            "PAYSIDECAR_WEBHOOK_TIMEOUT": "5s",
            "PAYSIDECAR_GATEWAY_TIMEOUT": GATEWAY_TIMEOUT,
            "PAYSIDECAR_RECONCILE_AFTER": RECONCILE_AFTER,
            "PAYSIDECAR_RESEND_AFTER": RESEND_AFTER,
            "PAYSIDECAR_LOG_LEVEL": "info",
            "PAYSIDECAR_LOG_FORMAT": "json",
        })
        for setting in self.args.sidecar_env:
            name, _, value = setting.partition("=")
            env[name] = value
        return env

    def start_processes(self):
        sim_env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_SIM_")}
        sim_env.update({
            "GATEWAY_SIM_LISTEN": f"127.0.0.1:{self.ports['sim']}",
            "GATEWAY_SIM_APP_KEY": APP_KEY,
            "GATEWAY_SIM_SECRET_KEY": SECRET,
            "GATEWAY_SIM_BALANCE": "100000000",
            "GATEWAY_SIM_CALLBACK_RETRY": "500ms,1s,2s,3s,5s,8s,13s",
            "GATEWAY_SIM_LOG_LIMIT": "500000",
        })
        self.sim = Proc("gateway-sim", [os.path.join(self.bin_dir, "gateway-sim")], sim_env, os.path.join(self.work, "gateway-sim.log"))
        self.sim.start()
        if not wait_http(self.sim_url + "/healthz"):
            raise SystemExit(f"gateway-sim did not start; see {self.sim.log_path}")
        self.receiver.serve(self.ports["hooks"])
        self.sidecar = Proc("pay-sidecar", [self.args.sidecar_bin or os.path.join(self.bin_dir, "pay-sidecar"), "serve"], self.sidecar_env(),
                            os.path.join(self.work, "pay-sidecar.log"))
        self.start_sidecar()

    def start_sidecar(self):
        started = time.monotonic()
        self.sidecar.start()
        if not wait_http(self.api_url + "/readyz", timeout=60):
            raise SystemExit(f"pay-sidecar did not become ready; see {self.sidecar.log_path}")
        self.sidecar_up.set()
        return time.monotonic() - started

    # -- faults --

    def inject(self, fault):
        try:
            status, body = http("POST", self.sim_url + "/_sim/faults", fault)
        except OSError as error:
            self.errors.append(f"fault {fault}: {error}")
            return
        if status != 201:
            self.errors.append(f"fault {fault} refused: {status} {body}")
            return
        key = f"{fault['path']} {fault['kind']}"
        with self.lock:
            self.faults[key] = self.faults.get(key, 0) + 1

    def query_fault(self, rng):
        """A fault for the next query or two (drawn with each create, so faults keep pace with the traffic)."""
        path = rng.choice(["/api/Payouts/Query", "/api/Payments/Query"])
        kind = rng.choices(["status", "garbage", "delay", "answer", "drop"], weights=[3, 2, 2, 2, 1])[0]
        fault = {"path": path, "kind": kind, "count": 1}
        if kind == "status":
            fault["value"] = rng.choice([500, 502, 503])
        elif kind == "delay":
            fault["value"] = "1500ms"
        elif kind == "answer":
            fault["value"] = {"error": "system_busy"}
        return fault

    # -- callers --

    def caller(self, index, plans):
        rng = random.Random(f"{self.seed}/caller/{index}")
        for plan in plans:
            time.sleep(plan["think"])
            with self.lock:
                self.started_orders += 1
            if plan["fault"]:
                self.inject(plan["fault"])
            if plan["query_fault"]:
                self.inject(plan["query_fault"])
            self.create_until_final(plan, rng)

    def create_until_final(self, plan, rng):
        kind, body = plan["kind"], plan["body"]
        url = f"{self.api_url}/v1/{kind}s"
        history = plan.setdefault("history", [])
        first = time.monotonic()
        while True:
            at = time.monotonic() - START
            try:
                status, answer = http("POST", url, body, timeout=15.0)
            except OSError as error:
                history.append({"at": round(at, 3), "answer": f"no answer: {error}"})
                outcome = "retry"
            else:
                history.append({"at": round(at, 3), "status": status, "answer": answer})
                unknown = isinstance(answer, dict) and answer.get("orderStatus") == "unknown"
                in_progress = status == 409 and isinstance(answer, dict) and answer.get("code") == "request_in_progress"
                if 200 <= status < 300:
                    outcome = "final"
                elif unknown or in_progress:
                    outcome = "retry"
                else:
                    outcome = "final"
            if outcome == "final":
                plan["final"] = history[-1]
                if plan["poll"]:
                    self.poll(plan)
                return
            if time.monotonic() - first > self.args.caller_deadline:
                plan["final"] = {"gave_up": True, **history[-1]}
                return
            time.sleep(rng.uniform(0.4, 1.5))
            if rng.random() < 0.3:
                self.poll(plan)

    def poll(self, plan):
        try:
            status, answer = http("GET", f"{self.api_url}/v1/{plan['kind']}s/{urllib.parse.quote(plan['mrn'])}", timeout=15.0)
            plan.setdefault("polls", []).append({"at": round(time.monotonic() - START, 3), "status": status,
                                                 "state": answer.get("status") if isinstance(answer, dict) else None})
        except OSError:
            pass

    # -- kills --

    def killer(self):
        total = len(self.plans)
        for k in range(self.args.kills):
            threshold = total * (k + 1) // (self.args.kills + 1)
            while True:
                with self.lock:
                    if self.started_orders >= threshold:
                        break
                if self.callers_done.is_set():
                    break
                time.sleep(0.05)
            # Creates in flight at the moment of the kill: held and late payouts.
            rng = random.Random(f"{self.seed}/kill/{k}")
            for _ in range(2):
                self.inject({"path": "/api/Payouts/Create", "kind": "hold", "value": f"{int(rng.uniform(*HOLD_RANGE) * 1000)}ms", "count": 1})
            self.inject({"path": "/api/Payouts/Create", "kind": "delay", "value": "2000ms", "count": 1})
            # Kill once the next payout creates met them (they are then in flight), or after 5 s.
            until = time.monotonic() + 5.0
            while time.monotonic() < until:
                try:
                    _, pending = http("GET", self.sim_url + "/_sim/faults", timeout=5.0)
                except OSError:
                    break
                if not any(f["path"] == "/api/Payouts/Create" and f["kind"] in ("hold", "delay") for f in pending or []):
                    break
                time.sleep(0.02)
            time.sleep(0.2)
            self.sidecar_up.clear()
            self.sidecar.kill()
            killed_at = time.monotonic() - START
            log(f"SIGKILL {k + 1}/{self.args.kills} of pay-sidecar after {threshold} orders started")
            time.sleep(rng.uniform(1.0, 2.5))
            took = self.start_sidecar()
            self.kills.append({"at": round(killed_at, 1), "down_s": round(time.monotonic() - START - killed_at, 2), "ready_after_s": round(took, 2)})
            log(f"pay-sidecar restarted on the same database (ready in {took:.2f}s)")

    # -- settling --

    def settler(self):
        plans = {p["mrn"]: p for p in self.plans}
        first_seen = {}
        while not self.settler_stop.is_set():
            try:
                status, orders = http("GET", self.sim_url + "/_sim/orders", timeout=10.0)
            except OSError:
                time.sleep(0.25)
                continue
            now = time.monotonic()
            for order in orders if isinstance(orders, list) else []:
                mrn = order["mrn"]
                first_seen.setdefault(mrn, now)
                plan = plans.get(mrn)
                if plan is None or order["status"] != 0 or mrn in self.settled_by_harness:
                    continue
                settle = plan["settle"]
                if now - first_seen[mrn] < settle["delay"]:
                    continue
                if settle["callback_fault"]:
                    self.inject(settle["callback_fault"])
                    with self.lock:
                        key = settle["callback_fault"]["kind"]
                        self.callback_faults[key] = self.callback_faults.get(key, 0) + 1
                kind = order["kind"]
                if kind == "payout":
                    path = f"/_sim/payouts/{urllib.parse.quote(mrn)}/{settle['action']}"
                    payload = None
                else:
                    path = f"/_sim/deposits/{urllib.parse.quote(mrn)}/{settle['action']}"
                    payload = {"amount": settle["amount"]} if settle["amount"] else None
                try:
                    status, _ = http("POST", self.sim_url + path, payload if payload else b"", timeout=10.0)
                    if status in (200, 409):
                        self.settled_by_harness[mrn] = settle["action"] + (f" {settle['amount']}" if settle["amount"] else "")
                except OSError as error:
                    self.errors.append(f"settle {mrn}: {error}")
            time.sleep(0.25)

    # -- ghosts: signed callbacks for mrns nobody created --

    def ghost_callbacks(self):
        rng = random.Random(f"{self.seed}/ghosts")
        deposit_mrns = [p["mrn"] for p in self.plans if p["kind"] == "deposit"]
        payout_mrns = [p["mrn"] for p in self.plans if p["kind"] == "payout"]
        for i in range(self.args.ghosts):
            time.sleep(rng.uniform(0.5, 4.0))
            kind = rng.choice(["deposit", "payout"])
            mrn = f"G-{self.seed}-{i:03d}"
            if i % 10 == 9:
                # The other kind's mrn: no caller created a payout (deposit) with it.
                mrn = rng.choice(deposit_mrns if kind == "payout" else payout_mrns) if deposit_mrns and payout_mrns else mrn
            amount = rng.randint(1, 5000)
            if kind == "deposit":
                fields = [("amount", yuan(amount * 100)), ("appKey", APP_KEY), ("channel", str(rng.randint(1, 15))), ("mrn", mrn),
                          ("originAmount", str(amount))]
                path = "/callbacks/deposit"
            else:
                fields = [("amount", str(amount)), ("appKey", APP_KEY), ("mrn", mrn)]
                path = "/callbacks/payout"
            form = urllib.parse.urlencode(fields + [("sign", md5_sign(fields))])
            copies = 2 if rng.random() < 0.3 else 1
            entry = {"kind": kind, "mrn": mrn, "answers": []}
            self.ghosts.append(entry)
            for _ in range(copies):
                # As a gateway would: until answered 200 success (the sidecar may be down).
                for _attempt in range(40):
                    try:
                        status, answer = http("POST", self.cb_url + path, form,
                                              headers={"Content-Type": "application/x-www-form-urlencoded"}, timeout=10.0)
                        entry["answers"].append(f"{status} {answer}")
                        if status == 200:
                            break
                    except OSError as error:
                        entry["answers"].append(f"no answer: {error}")
                    time.sleep(0.5)

    # -- quiescence --

    def metric(self, name):
        try:
            status, text = http("GET", self.api_url + "/metrics", timeout=5.0)
        except OSError:
            return None
        if status != 200 or not isinstance(text, str):
            return None
        total = None
        for line in text.splitlines():
            if line.startswith(name) and (len(line) == len(name) or line[len(name)] in " {"):
                total = (total or 0) + float(line.rsplit(" ", 1)[1])
        return total

    def sim_orders(self):
        status, orders = http("GET", self.sim_url + "/_sim/orders", timeout=30.0)
        return {o["mrn"]: o for o in orders}

    def untold(self, sim, events_by_key):
        return untold(self.plans, sim, events_by_key)

    def wait_quiescence(self):
        deadline = time.monotonic() + self.args.settle_timeout
        stable_since = None
        while time.monotonic() < deadline:
            sim = self.sim_orders()
            created = {p["mrn"] for p in self.plans}
            waiting = [m for m, o in sim.items() if o["status"] == 0 and m in created]
            missing = self.untold(sim, group_events(self.receiver.snapshot()))
            pending = self.metric("paysidecar_outbox_pending_events")
            quiet = not waiting and not missing and pending == 0
            if quiet:
                stable_since = stable_since or time.monotonic()
                if time.monotonic() - stable_since >= 3.0:
                    return True
            else:
                stable_since = None
            log(f"waiting for quiescence: {len(waiting)} unsettled at the gateway, {len(missing)} outcomes not yet told, "
                f"outbox pending {pending}")
            time.sleep(3.0)
        return False

    # -- the whole run --

    def execute(self):
        log(f"work folder {self.work}; binaries from {self.bin_dir}")
        self.start_processes()
        log(f"gateway-sim on {self.sim_url}, pay-sidecar on {self.api_url} (callbacks {self.cb_url}), receiver on :{self.ports['hooks']}")
        threads = []
        background = [threading.Thread(target=self.settler, daemon=True)]
        ghosts = threading.Thread(target=self.ghost_callbacks, daemon=True)
        killer = threading.Thread(target=self.killer, daemon=True)
        for t in background + [ghosts, killer]:
            t.start()
        for index in range(self.args.callers):
            t = threading.Thread(target=self.caller, args=(index, self.plans[index::self.args.callers]), daemon=True)
            threads.append(t)
            t.start()
        last_report = time.monotonic()
        while any(t.is_alive() for t in threads):
            time.sleep(0.5)
            if time.monotonic() - last_report > 15:
                last_report = time.monotonic()
                done = sum(1 for p in self.plans if "final" in p)
                log(f"callers: {done}/{len(self.plans)} orders answered finally; {self.receiver.requests} webhooks received")
        self.callers_done.set()
        self.phases = {"callers_done_s": round(time.monotonic() - START, 1)}
        log("callers done")
        killer.join()
        ghosts.join()
        self.stop_faults.set()
        http("DELETE", self.sim_url + "/_sim/faults")
        self.quiescent = self.wait_quiescence()
        self.phases["quiescent_s"] = round(time.monotonic() - START, 1)
        self.settler_stop.set()
        time.sleep(max(HOLD_RANGE))
        log("quiescent" if self.quiescent else "no quiescence within --settle-timeout: computing anyway")


def group_events(events):
    grouped = {}
    for e in events:
        kind = (e["type"] or "").split(".")[0]
        grouped.setdefault((kind, e["data"].get("mrn")), []).append(e)
    return grouped


def tells_outcome(events, kind, paid):
    want = "succeeded" if paid else "failed"
    for e in events:
        if e["type"] == f"{kind}.{want}":
            return True
        if e["type"] == f"{kind}.flagged" and e["data"].get("orderStatus") == want:
            return True
    return False


# ---------------------------------------------------------------------------------------------------------
# Ground truth


def untold(plans, sim, by_key):
    """Created (kind, mrn) the simulator settled whose outcome no webhook told."""
    created = {(p["kind"], p["mrn"]) for p in plans}
    missing = []
    for mrn, order in sim.items():
        key = (order["kind"], mrn)
        if key not in created or order["status"] not in (1, 2):
            continue
        if not tells_outcome(by_key.get(key, []), order["kind"], order["status"] == 1):
            missing.append(mrn)
    return missing


def table_rows(plans, sim, events):
    """The five rows, each a list of offenders, from the callers' plans (with their final answers), the
    simulator's orders (by mrn) and the webhooks received (one per webhook-id)."""
    by_key = group_events(events)
    created = {(p["kind"], p["mrn"]) for p in plans}
    rows = {}

    rows["double_payouts"] = sorted(m for m, o in sim.items() if o["kind"] == "payout" and o.get("bookings", 1) > 1)
    rows["untold_settlements"] = sorted(untold(plans, sim, by_key))

    silent = []
    for e in events:
        kind, _, outcome = (e["type"] or "").partition(".")
        if outcome not in ("succeeded", "failed"):
            continue
        mrn = e["data"].get("mrn")
        amount = e["data"].get("amount")
        if (kind, mrn) not in created or amount is None:
            continue
        order = sim.get(mrn)
        if order is None or order["kind"] != kind or order["status"] != 1:
            paid = None
        else:
            paid = fen(order.get("paidAmount") or order["amount"]) if kind == "deposit" else fen(order["amount"])
        if paid == fen(amount):
            continue
        flagged = e["data"].get("flag") is not None or any(x["type"] == f"{kind}.flagged" for x in by_key.get((kind, mrn), []))
        if not flagged:
            silent.append(f"{mrn} ({e['id']}: amount {amount}, gateway paid {yuan(paid) if paid is not None else 'nothing'})")
    rows["silent_amount_differences"] = sorted(silent)

    refused = []
    for p in plans:
        final = p.get("final") or {}
        if p["kind"] != "payout" or final.get("gave_up") or "status" not in final:
            continue
        answer = final.get("answer")
        is_refusal = final["status"] >= 400 and not (isinstance(answer, dict) and answer.get("orderStatus") == "unknown")
        order = sim.get(p["mrn"])
        if is_refusal and order is not None and order["kind"] == "payout":
            refused.append(f"{p['mrn']} ({final['status']} {answer.get('code') if isinstance(answer, dict) else answer})")
    rows["plain_refusals_for_existing_payouts"] = sorted(refused)

    ghost_plain = []
    for e in events:
        kind, _, outcome = (e["type"] or "").partition(".")
        if outcome in ("succeeded", "failed") and (kind, e["data"].get("mrn")) not in created:
            ghost_plain.append(f"{e['data'].get('mrn')} ({e['type']}, {e['id']})")
    rows["plain_events_for_ghost_mrns"] = sorted(ghost_plain)

    return rows


def self_test():
    """The rows' counting on made-up data: each row sees what it should, and nothing else (no processes)."""
    def plan(kind, mrn, status=None, answer=None, gave_up=False):
        final = {"status": status, "answer": answer} if status else {}
        if gave_up:
            final["gave_up"] = True
        return {"kind": kind, "mrn": mrn, "final": final}

    def order(kind, mrn, status, amount="100", paid=None, bookings=1):
        o = {"kind": kind, "mrn": mrn, "status": status, "amount": amount, "bookings": bookings}
        if paid:
            o["paidAmount"] = paid
        return o

    def event(wid, type_, mrn, **data):
        return {"id": wid, "type": type_, "data": {"mrn": mrn, **data}}

    unknown = {"code": "gateway_timeout", "orderStatus": "unknown"}
    plans = [
        plan("payout", "P1", 202, {"status": "pending"}),                  # fine
        plan("payout", "P2", 202, {"status": "pending"}),                  # booked twice
        plan("payout", "P3", 502, {"code": "system_busy"}),               # refused, yet booked
        plan("payout", "P4", 422, {"code": "invalid_data"}),              # refused, not booked: fine
        plan("payout", "P5", 504, unknown, gave_up=True),                 # gave up: not a refusal
        plan("payout", "P6", 409, {"code": "mrn_duplication", "orderStatus": "unknown"}),  # unknown: fine
        plan("deposit", "D1", 201, {"status": "pending"}),                 # paid another amount, flagged: fine
        plan("deposit", "D2", 201, {"status": "pending"}),                 # paid another amount, told silently
        plan("deposit", "D3", 201, {"status": "pending"}),                 # failed, never told
        plan("deposit", "D4", 201, {"status": "pending"}),                 # paid, told only by a flag saying succeeded
        plan("deposit", "D5", 201, {"status": "pending"}),                 # paid, told by query (amount null): fine
        plan("deposit", "D6", 201, {"status": "pending"}),                 # paid, told as failed: never told
    ]
    sim = {o["mrn"]: o for o in [
        order("payout", "P1", 1), order("payout", "P2", 1, bookings=2), order("payout", "P3", 0), order("payout", "P5", 2),
        order("payout", "P6", 1), order("deposit", "D1", 1, "100.00", "90.00"), order("deposit", "D2", 1, "100", "99.99"),
        order("deposit", "D3", 2), order("deposit", "D4", 1, paid="100.00"), order("deposit", "D5", 1, paid="80.00"),
        order("deposit", "D6", 1, paid="100.00"),
    ]}
    events = [
        event("e1", "payout.succeeded", "P1", amount="100"), event("e2", "payout.succeeded", "P2", amount="100"),
        event("e3", "payout.failed", "P5", amount=None), event("e4", "payout.succeeded", "P6", amount="100.00"),
        event("e5", "deposit.succeeded", "D1", amount="90.00", flag="amount_mismatch"),
        event("e6", "deposit.succeeded", "D2", amount="100.00"),
        event("e7", "deposit.flagged", "D4", flag="contradicting_outcome", orderStatus="succeeded"),
        event("e8", "deposit.succeeded", "D5", amount=None), event("e9", "deposit.failed", "D6", amount=None),
        event("g1", "deposit.flagged", "G1", flag="unknown_order", orderStatus="succeeded"),  # a ghost, flagged: fine
        event("g2", "payout.succeeded", "G2", amount="5"),                                     # a ghost, plain
        event("g3", "deposit.succeeded", "P1", amount="5"),                                    # the other kind's mrn
    ]
    rows = table_rows(plans, sim, events)
    got = {k: [item.split(" ")[0] for item in v] for k, v in rows.items()}
    want = {"double_payouts": ["P2"], "untold_settlements": ["D3", "D6"], "silent_amount_differences": ["D2"],
            "plain_refusals_for_existing_payouts": ["P3"], "plain_events_for_ghost_mrns": ["G2", "P1"]}
    assert got == want, f"self-test: got {got}, want {want}"
    print("self-test passed: each row counts what it should")


def compute(run):
    sim = run.sim_orders()
    events = run.receiver.snapshot()
    by_key = group_events(events)
    created = {(p["kind"], p["mrn"]) for p in run.plans}
    rows = table_rows(run.plans, sim, events)

    # Supporting counts.
    support = {}
    support["orders_created_by_callers"] = {"payouts": run.args.payouts, "deposits": run.args.deposits}
    sim_created = [o for m, o in sim.items() if (o["kind"], m) in created]
    support["gateway_orders"] = {
        "booked": len(sim_created),
        "never_booked": len(created) - len({(o["kind"], o["mrn"]) for o in sim_created}),
        "bookings_over_one": {k: sum(1 for o in sim_created if o["kind"] == k and o.get("bookings", 1) > 1) for k in ("payout", "deposit")},
        "by_status": count(f"{o['kind']} {o['statusText']}" for o in sim_created),
        "deposits_paid_another_amount": sum(1 for o in sim_created if o["kind"] == "deposit" and o["status"] == 1
                                            and fen(o.get("paidAmount")) != fen(o["amount"])),
    }
    finals = []
    for p in run.plans:
        final = p.get("final") or {}
        if final.get("gave_up"):
            finals.append("gave up (still unknown)")
        elif "status" in final:
            answer = final.get("answer")
            code = answer.get("code") if isinstance(answer, dict) and final["status"] >= 400 else (answer.get("status") if isinstance(answer, dict) else "")
            finals.append(f"{p['kind']} {final['status']} {code}")
        else:
            finals.append("no final answer")
    support["callers_final_answers"] = count(finals)
    attempts = [h for p in run.plans for h in p.get("history", [])]
    support["caller_attempts"] = {
        "total": len(attempts),
        "orderStatus_unknown": sum(1 for h in attempts if isinstance(h.get("answer"), dict) and h["answer"].get("orderStatus") == "unknown"),
        "request_in_progress": sum(1 for h in attempts if isinstance(h.get("answer"), dict) and h["answer"].get("code") == "request_in_progress"),
        "no_answer": sum(1 for h in attempts if isinstance(h.get("answer"), str) and h["answer"].startswith("no answer")),
        "polls": sum(len(p.get("polls", [])) for p in run.plans),
    }
    support["faults_injected"] = dict(sorted(run.faults.items()))
    status, requests = http("GET", run.sim_url + "/_sim/requests", timeout=60.0)
    support["faults_met_by_gateway_requests"] = count(f"{r['path']} {r['fault'].split(' ')[0]}" for r in requests if r.get("fault"))
    support["gateway_requests"] = count(r["path"] for r in requests)
    status, callbacks = http("GET", run.sim_url + "/_sim/callbacks", timeout=60.0)
    support["gateway_callbacks"] = {
        "attempts": sum(1 for c in callbacks if c["attempt"] > 0),
        "accepted": sum(1 for c in callbacks if c["accepted"]),
        "dropped_by_fault": sum(1 for c in callbacks if c["attempt"] == 0),
        "refused_or_failed": sum(1 for c in callbacks if c["attempt"] > 0 and not c["accepted"]),
    }
    support["kills"] = run.kills
    support["webhooks"] = {
        "requests": run.receiver.requests,
        "unique_events": len(events),
        "redelivered_copies": run.receiver.redeliveries,
        "refused_by_receiver_on_purpose": run.receiver.refused_on_purpose,
        "bad_signatures": run.receiver.bad_signatures,
        "same_id_other_body": run.receiver.mismatched_copies,
        "by_type": count(e["type"] for e in events),
    }
    settlements = [e for e in events if (e["type"] or "").partition(".")[2] in ("succeeded", "failed") and (e["type"].split(".")[0], e["data"].get("mrn")) in created]
    differing = [e for e in settlements if e["data"].get("amount") is not None and e["data"]["mrn"] in sim
                 and fen(e["data"]["amount"]) != fen(sim[e["data"]["mrn"]]["amount"])]
    support["settlement_events"] = {
        "with_amount": sum(1 for e in settlements if e["data"].get("amount") is not None),
        "amount_null_settled_by_query": sum(1 for e in settlements if e["data"].get("amount") is None),
        "amount_other_than_ordered": len(differing),
        "of_which_flag_in_data": sum(1 for e in differing if e["data"].get("flag") is not None),
    }
    resent = []
    with open(run.sidecar.log_path, "rb") as f:
        for raw in f:
            if b"unknown payout re-sent" in raw:
                try:
                    entry = json.loads(raw)
                except ValueError:
                    continue
                resent.append(f"{entry.get('mrn')} {entry.get('answer')}")
    support["payouts_resent_by_the_reconciler"] = {"count": len(resent), "answers": count(r.split(" ", 1)[1] for r in resent)}
    support["flags_by_code"] = count(e["data"].get("flag") for e in events if (e["type"] or "").endswith(".flagged"))
    support["ghost_callbacks"] = {"mrns": len(run.ghosts), "attempts": sum(len(g["answers"]) for g in run.ghosts),
                                  "answered_success": sum(1 for g in run.ghosts for a in g["answers"] if a.startswith("200")),
                                  "other_answers": count(a for g in run.ghosts for a in g["answers"] if not a.startswith("200"))}
    # Liveness, not money: creates answered "unknown" although consumers had already been told the outcome (a
    # careful caller keeps retrying them), and callers that gave up on an unknown outcome.
    told_at = {}
    for e in events:
        kind, _, outcome = (e["type"] or "").partition(".")
        if outcome in ("succeeded", "failed"):
            key = (kind, e["data"].get("mrn"))
            told_at[key] = min(told_at.get(key, e["at"]), e["at"])
    late_unknown = {}
    for p in run.plans:
        told = told_at.get((p["kind"], p["mrn"]))
        if told is None:
            continue
        n = sum(1 for h in p.get("history", []) if h["at"] > told + 0.5 and isinstance(h.get("answer"), dict)
                and h["answer"].get("orderStatus") == "unknown")
        if n:
            late_unknown[p["mrn"]] = n
    support["unknown_answers_after_the_outcome_was_told"] = {"answers": sum(late_unknown.values()), "mrns": len(late_unknown),
                                                             "examples": sorted(late_unknown)[:10]}
    support["callers_gave_up"] = sorted(p["mrn"] for p in run.plans if (p.get("final") or {}).get("gave_up"))
    support["deposits_booked_twice"] = sorted(m for m, o in sim.items() if o["kind"] == "deposit" and o.get("bookings", 1) > 1)
    support["harness_errors"] = run.errors[:20]
    return rows, support, sim, by_key


def save_artifacts(run, sim):
    """What the run saw, for a reader who wants to look again: the plans and every caller's attempts, the
    gateway's orders, requests and callbacks, and every webhook received."""
    _, requests = http("GET", run.sim_url + "/_sim/requests", timeout=60.0)
    _, callbacks = http("GET", run.sim_url + "/_sim/callbacks", timeout=60.0)
    path = os.path.join(run.work, "artifacts.json")
    with open(path, "w") as f:
        json.dump({"plans": run.plans, "gateway_orders": sim, "gateway_requests": requests, "gateway_callbacks": callbacks,
                   "webhooks": [{k: v for k, v in e.items() if k != "raw"} for e in run.receiver.snapshot()],
                   "ghosts": run.ghosts, "kills": run.kills, "settled_by_harness": run.settled_by_harness},
                  f, ensure_ascii=False)
    return path


def count(items):
    result = {}
    for item in items:
        result[item] = result.get(item, 0) + 1
    return dict(sorted(result.items(), key=lambda kv: (-kv[1], str(kv[0]))))


def evidence(run, mrn, sim, by_key):
    """Everything known about one mrn: the callers' requests and answers, the gateway's requests, bookings and
    callbacks, the webhooks received, the sidecar's journal view and its log lines."""
    plan = next((p for p in run.plans if p["mrn"] == mrn), None)
    out = {"mrn": mrn, "plan": {k: plan[k] for k in ("kind", "body", "fault", "query_fault", "settle") if plan} if plan else None,
           "caller": {"history": plan.get("history"), "polls": plan.get("polls"), "final": plan.get("final")} if plan else None,
           "gateway_order": sim.get(mrn), "settled_by_harness": run.settled_by_harness.get(mrn)}
    _, requests = http("GET", run.sim_url + "/_sim/requests", timeout=60.0)
    mine = []
    for r in requests:
        fields = {}
        if r["query"]:
            fields = dict(urllib.parse.parse_qsl(r["query"]))
        elif r["body"].startswith("{"):
            try:
                fields = json.loads(r["body"])
            except ValueError:
                pass
        if fields.get("mrn") == mrn:
            mine.append({"at": r["at"], "path": r["path"], "fault": r.get("fault"), "callback": fields.get("callback")})
    out["gateway_requests"] = mine
    _, callbacks = http("GET", run.sim_url + "/_sim/callbacks", timeout=60.0)
    out["gateway_callbacks"] = [{k: c[k] for k in ("at", "attempt", "status", "accepted", "error", "responseBody")} for c in callbacks if c["mrn"] == mrn]
    out["webhooks"] = [{"id": e["id"], "type": e["type"], "data": e["data"], "received_at_s": round(e["at"], 2)}
                       for key, es in by_key.items() if key[1] == mrn for e in es]
    kind = plan["kind"] if plan else (sim.get(mrn) or {}).get("kind", "payout")
    try:
        out["journal_view"] = http("GET", f"{run.api_url}/v1/{kind}s/{urllib.parse.quote(mrn)}")[1]
    except OSError as error:
        out["journal_view"] = f"no answer: {error}"
    lines = []
    with open(run.sidecar.log_path, "rb") as f:
        for raw in f:
            try:
                entry = json.loads(raw)
            except ValueError:
                continue
            if entry.get("mrn") == mrn:
                lines.append({k: v for k, v in entry.items() if k not in ("logger",)})
    out["sidecar_log"] = lines[-60:]
    return out


TITLES = [
    ("double_payouts", "double payouts (two payouts booked at the gateway for one mrn)"),
    ("untold_settlements", "settlements the gateway made that never reached consumers"),
    ("silent_amount_differences", "events whose paid amount silently differs from the gateway's"),
    ("plain_refusals_for_existing_payouts", "callers told a plain refusal for a payout that exists"),
    ("plain_events_for_ghost_mrns", "plain settlement events for mrns nobody created"),
]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seed", default="A")
    parser.add_argument("--payouts", type=int, default=300)
    parser.add_argument("--deposits", type=int, default=200)
    parser.add_argument("--callers", type=int, default=8)
    parser.add_argument("--kills", type=int, default=2)
    parser.add_argument("--ghosts", type=int, default=24, help="signed callbacks for mrns nobody created")
    parser.add_argument("--fault-rate", type=float, default=0.3, help="share of creates that meet a gateway fault")
    parser.add_argument("--query-fault-rate", type=float, default=0.25, help="share of creates followed by a fault for the next gateway query")
    parser.add_argument("--bin-dir", default=".build/debug")
    parser.add_argument("--sidecar-bin", help="another pay-sidecar binary (e.g. an older build) against this gateway-sim")
    parser.add_argument("--sidecar-env", action="append", default=[], metavar="NAME=VALUE",
                        help="override a sidecar setting (to check the harness catches a known-unsafe one, e.g. PAYSIDECAR_RESEND_AFTER=500ms)")
    parser.add_argument("--caller-deadline", type=float, default=150.0, help="seconds a caller keeps retrying an unknown outcome")
    parser.add_argument("--settle-timeout", type=float, default=240.0, help="seconds to wait for quiescence after the callers")
    parser.add_argument("--json", help="also write the JSON summary here")
    parser.add_argument("--keep", action="store_true", help="keep the work folder (logs, database) even when every row is 0")
    parser.add_argument("--self-test", action="store_true", help="check the rows' counting on made-up data, then exit")
    args = parser.parse_args()
    if args.self_test:
        self_test()
        return

    def terminate(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")
    signal.signal(signal.SIGTERM, terminate)
    run = Run(args)
    began = time.time()
    failed = True
    try:
        run.execute()
        rows, support, sim, by_key = compute(run)
        artifacts = save_artifacts(run, sim)
        elapsed = time.time() - began
        failed = any(rows.values())
        print()
        print(f"Adversarial run, seed {args.seed}: {args.payouts} payouts, {args.deposits} deposits, {args.callers} callers, "
              f"{len(run.kills)} SIGKILLs, {elapsed:.0f} s{'' if run.quiescent else ' (no quiescence: counted at the timeout)'}")
        print()
        print(f"| | seed {args.seed} |")
        print("|---|---|")
        for key, title in TITLES:
            print(f"| {title} | {len(rows[key])} |")
        print()
        for key, title in TITLES:
            if rows[key]:
                print(f"{title}: {', '.join(rows[key][:20])}{' ...' if len(rows[key]) > 20 else ''}")
        summary = {"seed": args.seed, "sizes": {"payouts": args.payouts, "deposits": args.deposits, "callers": args.callers, "kills": args.kills},
                   "seconds": round(elapsed, 1), "quiescent": run.quiescent, "phases": run.phases,
                   "timings": {"PAYSIDECAR_GATEWAY_TIMEOUT": GATEWAY_TIMEOUT, "PAYSIDECAR_RECONCILE_AFTER": RECONCILE_AFTER,
                               "PAYSIDECAR_RESEND_AFTER": RESEND_AFTER, "hold_s": HOLD_RANGE, "late_answer_s": LATE_ANSWER_RANGE},
                   "rows": {k: len(v) for k, v in rows.items()}, "offenders": rows, "support": support, "work": run.work,
                   "artifacts": artifacts}
        if failed:
            examples = {}
            for key, _ in TITLES:
                for item in rows[key][:3]:
                    mrn = item.split(" ")[0]
                    examples.setdefault(mrn, evidence(run, mrn, sim, by_key))
            path = os.path.join(run.work, "evidence.json")
            with open(path, "w") as f:
                json.dump(examples, f, indent=1, ensure_ascii=False)
            summary["evidence"] = path
        print()
        print(json.dumps(summary, indent=1, ensure_ascii=False))
        if args.json:
            with open(args.json, "w") as f:
                json.dump(summary, f, indent=1, ensure_ascii=False)
    except BaseException:
        traceback.print_exc()
        raise
    finally:
        run.stop_faults.set()
        run.settler_stop.set()
        code = run.sidecar.stop() if hasattr(run, "sidecar") else None
        if hasattr(run, "sim"):
            run.sim.stop()
        if hasattr(run.receiver, "server"):
            run.receiver.server.shutdown()
        if code not in (0, None):
            log(f"pay-sidecar exited {code} on SIGTERM")
        if failed or args.keep:
            log(f"kept {run.work} (logs, database, evidence)")
        else:
            shutil.rmtree(run.work, ignore_errors=True)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
