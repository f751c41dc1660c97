#!/usr/bin/env python3
"""The load harness: pay-sidecar against a direct call to a gateway stub and a plain nginx hop, in one run.

Started by Benchmarks/load/run.sh (which installs nginx and wrk and builds the release binary). Writes
results.json and results.md to the output folder and prints the table.

Targets, interleaved per round (A B C A B C ...), for POST /v1/payouts and POST /v1/deposits:
  direct  - wrk straight to the stub (nginx returning the gateway's fixed JSON on loopback)
  nginx   - a plain nginx reverse proxy (keep-alive upstream) in front of the stub: the floor cost of a hop
  sidecar - pay-sidecar (release build) in front of the stub: validate, journal, sign, forward, journal
Each at one connection (wrk -t1 -c1: p50/p90/p99) and at 32 (wrk -t2 -c32: requests/s). Medians over the rounds.
Then: cold start to /readyz (median of 20), idle RSS, callback ingest rate (durable commits), webhook
delivery rate to a fast receiver, the stripped binary's size.
"""
import argparse
import hashlib
import http.client
import json
import os
import re
import signal
import sqlite3
import statistics
import subprocess
import sys
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
STUB, PROXY, API, CALLBACKS = 19101, 19102, 19103, 19104
SECRET = "bench-merchant-secret"
APP_KEY = "bench"
WEBHOOK_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

# Both nginx instances: the same process settings; `{body}` is the http block's own part.
NGINX_CONF = """
worker_processes {workers};
pid {dir}/{name}.pid;
error_log {dir}/{name}-error.log warn;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  keepalive_requests 1000000;
{body}}}
"""

STUB_HTTP = """
  client_body_buffer_size 64k;
  server {{
    listen 127.0.0.1:{stub} backlog=4096;
    default_type application/json;
    location = /api/Payouts/Create {{ return 200 '{{"error":"success","errorMessage":""}}'; }}
    location = /api/Pay/Create {{ return 200 '{{"success":true,"errorMsg":"","payUrl":"/api/Pay?id=STUB1&channel=2"}}'; }}
    location = /hooks {{ return 204; }}
  }}
"""

PROXY_HTTP = """
  upstream gateway {{ server 127.0.0.1:{stub}; keepalive 64; }}
  server {{
    listen 127.0.0.1:{proxy} backlog=4096;
    location / {{
      proxy_pass http://gateway;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }}
  }}
"""


def log(message):
    print(message, file=sys.stderr, flush=True)


def http_status(port, path, timeout=1.0):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.request("GET", path)
        return connection.getresponse().status
    except OSError:
        return None
    finally:
        connection.close()


def rss_kb(pid, field="VmRSS"):
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def nginx_pids(pid_file):
    master = int(open(pid_file).read().strip())
    children = subprocess.run(["pgrep", "-P", str(master)], capture_output=True, text=True).stdout.split()
    return [master] + [int(c) for c in children]


def start_nginx(name, workers, http, work):
    conf = os.path.join(work, f"{name}.conf")
    with open(conf, "w") as f:
        body = http.format(stub=STUB, proxy=PROXY)
        f.write(NGINX_CONF.format(workers=workers, dir=work, name=name, body=body))
    subprocess.run(["nginx", "-c", conf, "-p", work, "-e", os.path.join(work, f"{name}-error.log")], check=True)
    pid_file = os.path.join(work, f"{name}.pid")
    for _ in range(100):
        if os.path.exists(pid_file):
            return pid_file
        time.sleep(0.05)
    raise SystemExit(f"nginx {name} did not start")


def stop_nginx(pid_file):
    try:
        os.kill(int(open(pid_file).read().strip()), signal.SIGQUIT)
    except (OSError, ValueError):
        pass


def sidecar_env(work, database, webhook_url=None):
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "PAYSIDECAR_GATEWAY_URL": f"http://127.0.0.1:{STUB}",
        "PAYSIDECAR_APP_KEY": APP_KEY,
        "PAYSIDECAR_SECRET_KEY": SECRET,
        "PAYSIDECAR_PUBLIC_URL": f"http://127.0.0.1:{CALLBACKS}",
        "PAYSIDECAR_LISTEN": f"127.0.0.1:{API}",
        "PAYSIDECAR_CALLBACK_LISTEN": f"127.0.0.1:{CALLBACKS}",
        "PAYSIDECAR_DATABASE_URL": f"sqlite://{database}",
        "PAYSIDECAR_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "PAYSIDECAR_WEBHOOK_URL": webhook_url or f"http://127.0.0.1:{STUB}/hooks",
        # The reconciler would query the stub for every pending order after a minute; keep it out of the run.
        "PAYSIDECAR_RECONCILE_AFTER": "1h",
    }
    return env


class Sidecar:
    def __init__(self, binary, work, database, webhook_url=None):
        self.log = open(os.path.join(work, "sidecar.log"), "ab")
        self.started = time.perf_counter()
        self.process = subprocess.Popen([binary, "serve"], env=sidecar_env(work, database, webhook_url), stdout=self.log, stderr=self.log)

    def wait_ready(self, timeout=30.0):
        deadline = time.perf_counter() + timeout
        while time.perf_counter() < deadline:
            if self.process.poll() is not None:
                raise SystemExit(f"pay-sidecar exited with {self.process.returncode}; see sidecar.log")
            if http_status(API, "/readyz", timeout=0.5) == 200:
                return time.perf_counter() - self.started
            time.sleep(0.001)
        raise SystemExit("pay-sidecar did not become ready")

    def stop(self):
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(timeout=30)
        self.log.close()


UNITS = {"us": 1.0, "ms": 1000.0, "s": 1_000_000.0}


def parse_wrk(text):
    """Requests/s, latency percentiles in microseconds, non-2xx and socket errors."""
    result = {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))}
    for pct in ("50", "75", "90", "99"):
        m = re.search(rf"^\s+{pct}%\s+([\d.]+)(us|ms|s)\s*$", text, re.M)
        result[f"p{pct}"] = float(m.group(1)) * UNITS[m.group(2)] if m else None
    m = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
    result["non2xx"] = int(m.group(1)) if m else 0
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    result["socket_errors"] = sum(int(x) for x in m.groups()) if m else 0
    result["requests"] = int(re.search(r"(\d+) requests in", text).group(1))
    return result


def wrk(url, threads, connections, seconds, script, *args):
    command = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", script, url, "--", *args]
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    return parse_wrk(out)


def md5_sign(pairs):
    text = "&".join(f"{k}={v}" for k, v in pairs) + f"&key={SECRET}"
    return hashlib.md5(text.encode()).hexdigest()


def write_callbacks(path, count, nonce):
    with open(path, "w") as f:
        for i in range(count):
            fields = [("amount", "500"), ("appKey", APP_KEY), ("mrn", f"CB-{nonce}-{i}")]
            f.write("&".join(f"{k}={v}" for k, v in fields) + f"&sign={md5_sign(fields)}\n")


def metric(name, labels=""):
    text = urllib.request.urlopen(f"http://127.0.0.1:{API}/metrics", timeout=5).read().decode()
    for line in text.splitlines():
        if line.startswith(name + labels) or (not labels and line.startswith(name + " ")):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--binary", required=True)
    parser.add_argument("--work", required=True)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=4)
    parser.add_argument("--callbacks", type=int, default=60000)
    parser.add_argument("--webhooks", type=int, default=20000)
    parser.add_argument("--cold-starts", type=int, default=20)
    options = parser.parse_args()
    work = os.path.abspath(options.work)
    os.makedirs(work, exist_ok=True)
    database = os.path.join(work, "bench.db")
    for suffix in ("", "-wal", "-shm", ".lock"):
        if os.path.exists(database + suffix):
            os.remove(database + suffix)
    nonce = str(int(time.time()))
    began = time.time()

    stub_pid = start_nginx("stub", 1, STUB_HTTP, work)
    proxy_pid = start_nginx("proxy", "auto", PROXY_HTTP, work)
    sidecar = Sidecar(options.binary, work, database)
    results = {"machine": {"cpus": os.cpu_count(), "kernel": os.uname().release}, "settings": vars(options)}
    try:
        sidecar.wait_ready()
        time.sleep(1)
        results["idle_rss_mb"] = rss_kb(sidecar.process.pid) / 1024
        # RSS is mostly the binary's clean, shared, file-backed pages (its code, mapped from the page cache);
        # the anonymous part is the process's own memory (heap, stacks).
        results["idle_rss_anon_mb"] = rss_kb(sidecar.process.pid, "RssAnon") / 1024
        results["idle_rss_file_mb"] = rss_kb(sidecar.process.pid, "RssFile") / 1024
        log(f"idle RSS {results['idle_rss_mb']:.1f} MB (anonymous {results['idle_rss_anon_mb']:.1f}, file-backed {results['idle_rss_file_mb']:.1f})")

        urls = {
            "direct": {"payout": f"http://127.0.0.1:{STUB}/api/Payouts/Create", "deposit": f"http://127.0.0.1:{STUB}/api/Pay/Create"},
            "nginx": {"payout": f"http://127.0.0.1:{PROXY}/api/Payouts/Create", "deposit": f"http://127.0.0.1:{PROXY}/api/Pay/Create"},
            "sidecar": {"payout": f"http://127.0.0.1:{API}/v1/payouts", "deposit": f"http://127.0.0.1:{API}/v1/deposits"},
        }
        script = os.path.join(HERE, "create.lua")
        # Warm-up: connections, caches, the journal's first pages.
        for target in urls:
            for kind in ("payout", "deposit"):
                wrk(urls[target][kind], 2, 8, 1, script, kind, "sidecar" if target == "sidecar" else "gateway", f"{nonce}w")
        runs = []
        for r in range(options.rounds):
            for kind in ("payout", "deposit"):
                for target in ("direct", "nginx", "sidecar"):
                    body = "sidecar" if target == "sidecar" else "gateway"
                    one = wrk(urls[target][kind], 1, 1, options.seconds, script, kind, body, f"{nonce}r{r}a")
                    many = wrk(urls[target][kind], 2, 32, options.seconds, script, kind, body, f"{nonce}r{r}b")
                    runs.append({"round": r, "kind": kind, "target": target, "c1": one, "c32": many})
                    log(f"round {r} {kind:7} {target:7} c1 p50 {one['p50']:.0f}us p90 {one['p90']:.0f}us p99 {one['p99']:.0f}us"
                        f"  c32 {many['rps']:.0f}/s  errors {one['non2xx'] + many['non2xx'] + one['socket_errors'] + many['socket_errors']}")
        results["runs"] = runs
        results["sidecar_peak_rss_mb"] = rss_kb(sidecar.process.pid, "VmHWM") / 1024
        results["sidecar_rss_anon_after_load_mb"] = rss_kb(sidecar.process.pid, "RssAnon") / 1024
        results["nginx_proxy_peak_rss_mb"] = sum(rss_kb(pid, "VmHWM") for pid in nginx_pids(proxy_pid)) / 1024

        summary = {}
        for kind in ("payout", "deposit"):
            for target in ("direct", "nginx", "sidecar"):
                rows = [x for x in runs if x["kind"] == kind and x["target"] == target]
                summary[f"{kind}/{target}"] = {
                    "p50_us": median([x["c1"]["p50"] for x in rows]), "p90_us": median([x["c1"]["p90"] for x in rows]),
                    "p99_us": median([x["c1"]["p99"] for x in rows]), "rps_c32": median([x["c32"]["rps"] for x in rows]),
                    "errors": sum(x["c1"]["non2xx"] + x["c32"]["non2xx"] + x["c1"]["socket_errors"] + x["c32"]["socket_errors"] for x in rows),
                }
            for target in ("nginx", "sidecar"):
                added = {}
                for pct in ("p50", "p90", "p99"):
                    per_round = []
                    for r in range(options.rounds):
                        t = next(x for x in runs if x["round"] == r and x["kind"] == kind and x["target"] == target)
                        d = next(x for x in runs if x["round"] == r and x["kind"] == kind and x["target"] == "direct")
                        per_round.append(t["c1"][pct] - d["c1"][pct])
                    added[f"added_{pct}_us"] = median(per_round)
                summary[f"{kind}/{target}"].update(added)
            s, n = summary[f"{kind}/sidecar"], summary[f"{kind}/nginx"]
            summary[f"{kind}/ratios"] = {
                "throughput_vs_nginx": s["rps_c32"] / n["rps_c32"],
                "added_p50_vs_nginx": s["added_p50_us"] / max(n["added_p50_us"], 1),
                "added_p99_vs_nginx": s["added_p99_us"] / max(n["added_p99_us"], 1),
            }
        results["summary"] = summary

        # Callback ingest: signed callbacks, each acknowledged with `success` after its own durable commit.
        bodies = os.path.join(work, "callbacks.txt")
        write_callbacks(bodies, options.callbacks, nonce)
        ingest = wrk(f"http://127.0.0.1:{CALLBACKS}/callbacks/payout", 2, 32, options.seconds, os.path.join(HERE, "callbacks.lua"), bodies, "2")
        results["callback_ingest"] = {"per_second": ingest["rps"], "p99_us": ingest["p99"], "refused": ingest["non2xx"], "requests": ingest["requests"]}
        log(f"callbacks: {ingest['rps']:.0f}/s acknowledged, refused {ingest['non2xx']}, p99 {ingest['p99']:.0f}us")
    finally:
        sidecar.stop()

    # Webhook delivery: the events the ingest created, due again at once, drained by a fresh process into the
    # stub's 204 receiver.
    db = sqlite3.connect(database)
    queued = db.execute("""UPDATE outbox_events SET status = 'pending', attempts = 0, schedule_base = 0, next_attempt_at = 0,
                           claimed_until = NULL, delivered_at = NULL, last_error = NULL
                           WHERE seq IN (SELECT seq FROM outbox_events ORDER BY seq LIMIT ?)""", (options.webhooks,)).rowcount
    db.execute("UPDATE outbox_events SET status = 'delivered' WHERE status = 'pending' AND seq NOT IN (SELECT seq FROM outbox_events ORDER BY seq LIMIT ?)", (options.webhooks,))
    db.commit()
    db.close()
    sidecar = Sidecar(options.binary, work, database)
    try:
        sidecar.wait_ready()
        start = time.perf_counter()
        while metric("paysidecar_outbox_pending_events") > 0 and time.perf_counter() - start < 120:
            time.sleep(0.05)
        elapsed = time.perf_counter() - sidecar.started
        delivered = metric("paysidecar_webhook_deliveries_total", '{outcome="delivered"}')
        results["webhook_delivery"] = {"events": queued, "delivered": delivered, "seconds": elapsed, "per_second": delivered / elapsed}
        log(f"webhooks: {delivered:.0f} of {queued} delivered in {elapsed:.2f}s = {delivered / elapsed:.0f}/s")
    finally:
        sidecar.stop()

    # Cold start: exec until /readyz answers 200, on the database the run left behind.
    starts = []
    for _ in range(options.cold_starts):
        process = Sidecar(options.binary, work, database)
        starts.append(process.wait_ready() * 1000)
        process.stop()
    results["cold_start_ms"] = {"median": median(starts), "min": min(starts), "max": max(starts)}
    log(f"cold start to ready: median {median(starts):.1f} ms")

    stop_nginx(proxy_pid)
    stop_nginx(stub_pid)
    results["binary_stripped_mb"] = os.path.getsize(os.path.join(work, "pay-sidecar.stripped")) / 1024 / 1024 \
        if os.path.exists(os.path.join(work, "pay-sidecar.stripped")) else None
    results["duration_s"] = time.time() - began
    with open(os.path.join(work, "results.json"), "w") as f:
        json.dump(results, f, indent=2)
    print(json.dumps({k: v for k, v in results.items() if k != "runs"}, indent=2))


if __name__ == "__main__":
    main()
