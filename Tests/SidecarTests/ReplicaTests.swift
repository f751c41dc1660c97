import CurlHTTP
import Foundation
import LedgerPostgres
import PostgresTestSupport
import TestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Contract section 10 point by point, through the real binary: two or three `pay-sidecar serve` processes, each
/// with its own ports, on one PostgreSQL database; and what an outage of that database looks like from outside.
/// Runs when PAYSIDECAR_TEST_POSTGRES_URL is set (CI sets it); otherwise this suite shows as skipped. Serialized:
/// each test runs up to three binaries, which is what two cores can take beside the rest of the suite.
@Suite("Several replicas on PostgreSQL", .serialized,
       .enabled(if: PostgresTestDatabase.isConfigured, "PAYSIDECAR_TEST_POSTGRES_URL is not set: the replicas were not tested"))
struct ReplicaTests {
    @Test("""
        three replicas started together: the schema migrated once; the same create at two at once reaches the gateway once; \
        a callback at any replica is checked against the shared journal; each event is delivered once
        """)
    func sharedJournal() async throws {
        try await withReplicaSet(count: 3) { (replicas: ReplicaSet) async throws in
            try await replicas.start()
            let (a, b, c) = (replicas[0], replicas[1], replicas[2])

            // Replicas starting together migrate once: the others waited on the lock and found the versions applied.
            let versions = try await PostgresTestDatabase.integer(replicas.database, "SELECT COUNT(*) FROM schema_migrations")
            #expect(versions == PostgresLedger.schemaVersions.count)
            let migrators = replicas.processes.filter { $0.log.contains("database schema migrated") }
            #expect(migrators.count == 1, "one replica migrated, the others found it done: \(migrators.count)")

            // The same create at two replicas at once: a sends it (held 3 s at the gateway); b, asked while it is held,
            // finds it in flight; c, later, replays the answer. The gateway sees one create.
            try await a.addFault(#"{"path":"/api/Payouts/Create","kind":"delay","value":"3s","count":1}"#)
            let body = #"{"mrn":"P-shared","amount":500,"bankName":"b","accountName":"a","accountNumber":"1"}"#
            async let atA = a.post("/v1/payouts", json: body)
            #expect(await eventually { (try? await a.creates("/api/Payouts/Create")) == 1 }, "a's create is at the gateway")
            let atB = try await b.post("/v1/payouts", json: body)
            #expect(atB.status == 409 && (try? object(atB)["code"] as? String) == "request_in_progress", "\(atB.status) \(atB.bodyText)")
            #expect(try await atA.status == 202)
            #expect(try await c.post("/v1/payouts", json: body).status == 202, "the replay, from the journal")
            #expect(try await a.creates("/api/Payouts/Create") == 1, "one create reached the gateway")

            // The gateway's callback reaches b, then (a retry) c: one settlement, one event.
            #expect(try await b.callback("payout", payoutCallbackForm(mrn: "P-shared")).bodyText == "success")
            #expect(try await c.callback("payout", payoutCallbackForm(mrn: "P-shared")).bodyText == "success")
            #expect(try await a.journal("payout", "P-shared")["state"] as? String == "succeeded")
            // Integrity against the shared journal, whichever replica receives it: a deposit journaled at a, paid with
            // another amount in a callback at c, is flagged; a forged callback at b is refused and emits nothing.
            try await a.createDeposit("D-shared")
            #expect(try await c.callback("deposit", depositCallbackForm(mrn: "D-shared", amount: "150.00")).bodyText == "success")
            #expect(try await b.journal("deposit", "D-shared")["flag"] as? String == "amount_mismatch")
            let forged = try await b.callback("deposit", depositCallbackForm(mrn: "D-shared", sign: String(repeating: "0", count: 32)))
            #expect(forged.status == 401, "\(forged.status) \(forged.bodyText)")
            // A tampered payout amount at a, after the settlement at b: flagged too.
            #expect(try await a.callback("payout", payoutCallbackForm(mrn: "P-shared", amount: "5000")).bodyText == "success")
            #expect(try await c.journal("payout", "P-shared")["flag"] as? String == "amount_mismatch")

            // Every event the journal holds is delivered, each once, whichever replica delivered it.
            let events = try await a.allEvents()
            #expect(Set(events.compactMap { $0["type"] as? String }).isSuperset(of: ["payout.succeeded", "payout.flagged", "deposit.flagged"]),
                    "\(events.map { $0["type"] ?? "-" })")
            let ids = Set(events.compactMap { $0["id"] as? String })
            #expect(await eventually(timeout: .seconds(20)) { Set(deliveries(replicas.receiver).map(\.id)) == ids })
            try await Task.sleep(for: .milliseconds(500))
            let received = deliveries(replicas.receiver).map(\.id)
            #expect(received.count == ids.count, "each event once: \(received.sorted())")
            #expect(await eventually { (try? await b.allEvents("&status=delivered"))?.count == ids.count })
        }
    }

    @Test("""
        a slow receiver keeps each event with one replica (claims renewed past their lease); after a SIGKILL of that replica with \
        deliveries pending the survivor delivers them all, each with its original webhook-id, nothing acknowledged lost
        """)
    func killedReplica() async throws {
        // The receiver holds its answers for two minutes; attempts wait 90 s for them (longer than this test, however
        // slow the machine); claims last 3 s unless renewed.
        let settings = ["PAYSIDECAR_WEBHOOK_LEASE": "3s", "PAYSIDECAR_WEBHOOK_TIMEOUT": "90s"]
        try await withReplicaSet(count: 2, settings: settings) { (replicas: ReplicaSet) async throws in
            replicas.receiverAnswers.setFallback(TestHTTPResponse(status: 200, text: "too late", delay: .seconds(120)))
            try await replicas.start([0])
            let (a, b) = (replicas[0], replicas[1])
            let mrns = (0..<20).map { "D-kill-\($0)" }
            for mrn in mrns {
                // Callbacks for orders this sidecar never created: accepted (the default) and emitted, flagged.
                #expect(try await a.callback("deposit", depositCallbackForm(mrn: mrn)).bodyText == "success")
            }
            // 16 attempts in flight at the receiver (the per-target limit), 4 events claimed and waiting for a slot.
            #expect(await eventually(timeout: .seconds(20)) { replicas.receiver.requests.count >= 16 }, "a's attempts are in flight, unanswered")
            let first = Dictionary(deliveries(replicas.receiver).map { ($0.mrn, $0.id) }) { first, _ in first }

            // b starts and finds every event claimed by a; a renews its claims every second, so for two leases and more
            // b takes none, and no event is attempted twice.
            try await replicas.start([1])
            try await Task.sleep(for: .seconds(7))
            #expect(replicas.receiver.requests.count == first.count, "b took nothing while a held the events: \(replicas.receiver.requests.count)")

            #expect(await replicas.processes[0].signal(SIGKILL) == .signalled(SIGKILL))
            replicas.receiverAnswers.setFallback(TestHTTPResponse(status: 204))
            // a's claims run out within a lease (3 s); b claims and delivers all 20.
            #expect(await eventually(timeout: .seconds(30)) { Set(deliveries(replicas.receiver).map(\.mrn)).isSuperset(of: mrns) && replicas.receiver.requests.count >= first.count + 20 },
                    "\(replicas.receiver.requests.count) requests")
            let ids = Dictionary(grouping: deliveries(replicas.receiver), by: \.mrn).mapValues { Set($0.map(\.id)) }
            for mrn in mrns {
                #expect(ids[mrn]?.count == 1, "\(mrn): one webhook-id across the kill: \(ids[mrn] ?? [])")
                if let original = first[mrn] { #expect(ids[mrn] == [original], "\(mrn): the id a used") }
            }
            #expect(overlapping(webhookSpans(replicas.receiver)).isEmpty, "no event was in two replicas' hands at once")
            #expect(await eventually(timeout: .seconds(20)) { (try? await b.allEvents("&status=delivered"))?.count == 20 }, "all 20 recorded delivered")
            #expect(try await b.allEvents("&status=pending").isEmpty)
        }
    }

    @Test("many unknown orders reconciled by three replicas: no order queried by two at once, one payment gives one event")
    func reconciledOnce() async throws {
        let count = 30
        let settings = [
            // Creates time out (the gateway holds them 3 s): each order is journaled unknown and followed by query.
            "PAYSIDECAR_GATEWAY_TIMEOUT": "2s",
            "PAYSIDECAR_RECONCILE_AFTER": "300ms",
            // The gateway's callbacks go nowhere: the orders are settled by the reconcilers' queries.
            "PAYSIDECAR_PUBLIC_URL": "http://127.0.0.1:9",
        ]
        try await withReplicaSet(count: 3, settings: settings) { (replicas: ReplicaSet) async throws in
            try await replicas.start()
            let mrns = (0..<count).map { "P-rec-\($0)" }
            try await replicas[0].addFault(#"{"path":"/api/Payouts/Create","kind":"delay","value":"3s","count":\#(count)}"#)
            // Each query is held 150 ms, so that two replicas querying one order at once would show in the log.
            try await replicas[0].addFault(#"{"path":"/api/Payouts/Query","kind":"delay","value":"150ms"}"#)
            try await withThrowingTaskGroup(of: Void.self) { group in
                for (n, mrn) in mrns.enumerated() {
                    group.addTask {
                        let created = try await replicas[n % 3].post("/v1/payouts", json: #"{"mrn":"\#(mrn)","amount":1,"bankName":"b","accountName":"a","accountNumber":"1"}"#)
                        #expect(created.status == 504 && (try? object(created)["orderStatus"] as? String) == "unknown", "\(mrn): \(created.status) \(created.bodyText)")
                    }
                }
                try await group.waitForAll()
            }
            for mrn in mrns { try await replicas[0].simPost("/_sim/payouts/\(mrn)/complete") }

            let settled = await eventually(timeout: .seconds(40)) {
                let events = (try? await replicas[1].allEvents("&type=payout.succeeded")) ?? []
                return events.count >= count
            }
            #expect(settled, "every order settled by query")
            // The gateway retries a callback (it reached nobody the first time) at any replica: a duplicate, nothing new.
            for (n, mrn) in mrns.enumerated() {
                #expect(try await replicas[n % 3].callback("payout", payoutCallbackForm(mrn: mrn, amount: "1")).bodyText == "success")
            }
            let events = try await replicas[2].allEvents()
            #expect(events.count == count, "one event per order: \(events.count)")
            #expect(Dictionary(grouping: events, by: { $0["mrn"] as? String ?? "" }).allSatisfy { $0.value.count == 1 })
            let queries = querySpans(try await replicas[0].gatewayRequests(), path: "/api/Payouts/Query")
            #expect(Set(queries.map(\.key)).isSuperset(of: mrns), "every order was queried")
            #expect(overlapping(queries).isEmpty, "queried by two replicas at once: \(overlapping(queries).sorted())")
            // (After the log is read: reading an order through the API queries the gateway too.)
            for mrn in mrns.prefix(3) {
                let journal = try await replicas[1].journal("payout", mrn)
                #expect(journal["state"] as? String == "succeeded" && journal["settlementSource"] as? String == "query", "\(mrn): \(journal)")
            }
            #expect(await eventually(timeout: .seconds(20)) { deliveries(replicas.receiver).count >= count })
            try await Task.sleep(for: .milliseconds(300))
            #expect(deliveries(replicas.receiver).count == count, "one webhook per payment")
            // How the work spread (informational: the split depends on timing).
            var perReplica: [Int] = []
            for index in replicas.indices {
                let text = (try? await replicas[index].get("/metrics").bodyText) ?? ""
                perReplica.append(Int(metric(text, "paysidecar_reconciler_queries_total", ["result": "settled"]) ?? 0))
            }
            print("orders settled by query, per replica: \(perReplica)")
        }
    }

    @Test("""
        the compose example's proxy (examples/nginx-callbacks.conf) in front of two replicas: one callback address for both, the \
        gateway's address forwarded in place of any claimed one, callbacks still taken when one replica stops (where nginx is installed)
        """)
    func callbackProxy() async throws {
        guard let nginx = ["/usr/sbin/nginx", "/usr/local/sbin/nginx", "/usr/bin/nginx"].first(where: { FileManager.default.isExecutableFile(atPath: $0) }) else {
            print("nginx is not installed: the example proxy was not run")
            return
        }
        let settings = ["PAYSIDECAR_TRUSTED_PROXIES": "127.0.0.1", "PAYSIDECAR_CALLBACK_ALLOWED_IPS": "127.0.0.1"]
        try await withReplicaSet(count: 2, settings: settings) { (replicas: ReplicaSet) async throws in
            try await replicas.start()
            // The example as shipped, its upstream names and listen port replaced by this test's loopback ports.
            let folder = try temporaryFolder("nginx")
            let port = try await uniqueTestPort()
            var site = try String(contentsOf: examplesFolder.appendingPathComponent("nginx-callbacks.conf"), encoding: .utf8)
            for (index, name) in ["sidecar-a:8081", "sidecar-b:8081"].enumerated() {
                site = site.replacingOccurrences(of: name, with: replicas.processes[index].callbacks.replacingOccurrences(of: "http://", with: ""))
            }
            site = site.replacingOccurrences(of: "listen 8081;", with: "listen 127.0.0.1:\(port);")
            try site.write(to: folder.appendingPathComponent("site.conf"), atomically: true, encoding: .utf8)
            try FileManager.default.createDirectory(at: folder.appendingPathComponent("logs"), withIntermediateDirectories: true)
            try """
                worker_processes 1;
                pid \(folder.path)/nginx.pid;
                error_log \(folder.path)/logs/error.log;
                events {}
                http {
                    access_log off;
                    client_body_temp_path \(folder.path)/body;
                    proxy_temp_path \(folder.path)/proxy;
                    include \(folder.path)/site.conf;
                }
                """.write(to: folder.appendingPathComponent("nginx.conf"), atomically: true, encoding: .utf8)
            let proxy = try ChildProcess(nginx, ["-p", folder.path, "-c", folder.appendingPathComponent("nginx.conf").path, "-g", "daemon off;"],
                                         environment: [:], output: folder.appendingPathComponent("logs/stdout.log").path)
            defer {
                proxy.signal(SIGTERM)
                proxy.wait()
            }
            let address = "http://127.0.0.1:\(port)"
            let up = await eventually { (try? await replicas.client.execute(CurlRequest(url: address + "/healthz")))?.status == 200 }
            try #require(up, "nginx did not start: \((try? String(contentsOf: folder.appendingPathComponent("logs/error.log"), encoding: .utf8)) ?? "")")
            let gateway = ReplicaEndpoints(client: replicas.client, gateway: replicas.gateway, api: replicas.processes[0].api, callbackListener: address,
                                           receiver: replicas.receiver)
            #expect(try await replicas.client.execute(CurlRequest(url: address + "/v1/events")).status == 404, "nothing but callbacks through the proxy")

            let mrns = (0..<6).map { "D-proxy-\($0)" }
            for mrn in mrns { try await replicas[0].createDeposit(mrn) }
            // A forged X-Forwarded-For from the caller is replaced by the proxy with the caller's own address (allowed);
            // sent straight to a replica, which trusts 127.0.0.1 as a proxy, the same header is believed and refused.
            let forged = [("Content-Type", "application/x-www-form-urlencoded"), ("X-Forwarded-For", "203.0.113.9")]
            for mrn in mrns.prefix(4) {
                #expect(try await gateway.callback("deposit", depositCallbackForm(mrn: mrn), headers: forged).bodyText == "success", "\(mrn) through the proxy")
            }
            #expect(try await replicas[1].callback("deposit", depositCallbackForm(mrn: mrns[4]), headers: forged).status == 403)
            // nginx takes turns: both replicas took callbacks.
            for process in replicas.processes { #expect(process.log.contains("callback accepted"), "each replica took callbacks") }
            // One replica stops; the same address still takes every callback.
            #expect(await replicas.processes[1].signal(SIGTERM) == .exited(0))
            for mrn in mrns.suffix(2) {
                #expect(try await gateway.callback("deposit", depositCallbackForm(mrn: mrn)).bodyText == "success", "\(mrn) with one replica left")
            }
            #expect(try await eventually { try await replicas[0].allEvents("&type=deposit.succeeded").count == 6 }, "each deposit settled once")
        }
    }

    @Test("the database goes away: /readyz and requests answer 503 within the timeout, /healthz stays 200, nothing crashes")
    func outage() async throws {
        try await PostgresTestDatabase.withFreshDatabase { (url: String) async throws in
            let settings = ["PAYSIDECAR_DATABASE_URL": url, "PAYSIDECAR_DATABASE_TIMEOUT": "2s", "PAYSIDECAR_DATABASE_POOL_SIZE": "3"]
            try await withSidecar(settings: settings) { (e2e: E2E) async throws in
                #expect(try await e2e.get("/readyz").status == 200)
                try await e2e.createPayout("P-before")
                try await PostgresTestDatabase.drop(url)
                #expect(await eventually(timeout: .seconds(15)) { (try? await e2e.get("/readyz"))?.status == 503 })
                let started = ContinuousClock.now
                let create = try await e2e.post("/v1/payouts", json: #"{"mrn":"P-during","amount":7,"bankName":"b","accountName":"a","accountNumber":"1"}"#)
                #expect(try create.status == 503 && object(create)["code"] as? String == "storage_unavailable", "\(create.status) \(create.bodyText)")
                // Well above the 2 s deadline (a loaded machine), far below the minute the pool alone would wait.
                #expect(ContinuousClock.now - started < .seconds(20), "answered after \(ContinuousClock.now - started)")
                #expect(try await e2e.creates("/api/Payouts/Create") == 1, "nothing sent without a journal")
                #expect(try await e2e.get("/healthz").status == 200, "the process is up")
            }
        }
    }
}
