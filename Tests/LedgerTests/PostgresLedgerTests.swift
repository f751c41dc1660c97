import Foundation
import GatewayProtocol
import Ledger
import Orders
import PostgresNIO
import PostgresTestSupport
import Synchronization
import Testing

@testable import LedgerPostgres

/// What only a shared database has to get right: several writers and replicas at once, migrations raced by
/// replicas starting together, notifications, outages. Runs when PAYSIDECAR_TEST_POSTGRES_URL is set (CI sets
/// it: `eval "$(scripts/pg-test-cluster.sh start)"`); otherwise this suite shows as skipped.
@Suite("PostgreSQL ledger", .enabled(if: PostgresTestDatabase.isConfigured, "PAYSIDECAR_TEST_POSTGRES_URL is not set: the PostgreSQL ledger was not tested"))
struct PostgresLedgerTests {
    /// Two replicas: two ledgers (two pools) on one fresh database, both running while `body` runs.
    func withReplicas<R>(_ body: (PostgresLedger, PostgresLedger) async throws -> R) async throws -> R {
        try await PostgresTestDatabase.withFreshDatabase { (url: String) async throws in
            let settings = try PostgresSettings(url: url, poolSize: 4, timeout: .seconds(30))
            let a = try await PostgresLedger.open(settings, logger: PostgresTestDatabase.quietLogger)
            let b = try await PostgresLedger.open(settings, logger: PostgresTestDatabase.quietLogger)
            return try await PostgresTestDatabase.running(a) {
                try await PostgresTestDatabase.running(b) { try await body(a, b) }
            }
        }
    }

    @Test("the same insert committed by many tasks at once: exactly one is committed, every other one sees it")
    func concurrentInserts() async throws {
        try await withReplicas { (a: PostgresLedger, b: PostgresLedger) async throws in
            let order = newOrder("P-race")
            let results = try await withThrowingTaskGroup(of: CommitResult.self) { group in
                for n in 0..<20 {
                    group.addTask { try await (n % 2 == 0 ? a : b).commit(JournalWrite(order: .insert(order), events: [event("evt_race_\(n)", mrn: "P-race")])) }
                }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            #expect(results.filter { $0 == .committed }.count == 1)
            #expect(results.filter { $0 == .conflict(.order(order)) }.count == 19)
            #expect(try await a.events(EventQuery(limit: 100)).count == 1, "the refused writes wrote no event")
        }
    }

    @Test("an update based on one version, from many tasks at once: exactly one wins")
    func concurrentUpdates() async throws {
        try await withReplicas { (a: PostgresLedger, b: PostgresLedger) async throws in
            let order = newOrder("P-upd")
            #expect(try await a.commit(JournalWrite(order: .insert(order))) == .committed)
            let results = try await withThrowingTaskGroup(of: CommitResult.self) { group in
                for n in 0..<20 {
                    var next = order
                    next.queryCount = n + 1
                    next.version = 2
                    group.addTask { try await (n % 2 == 0 ? a : b).commit(JournalWrite(order: .update(next, expectedVersion: 1))) }
                }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            #expect(results.filter { $0 == .committed }.count == 1)
            guard case .order(let winner) = try await b.journaled(.payout, "P-upd") else { Issue.record("gone"); return }
            #expect(winner.version == 2)
            #expect(results.filter { $0 == .conflict(.order(winner)) }.count == 19)
        }
    }

    @Test("an insert racing the prune of the same mrn never journals a tombstoned mrn anew")
    func insertRacingPrune() async throws {
        try await withReplicas { (a: PostgresLedger, b: PostgresLedger) async throws in
            for n in 0..<20 {
                let mrn = "P-prune-\(n)"
                var settled = newOrder(mrn, state: .succeeded)
                settled.closedAt = 5
                #expect(try await a.commit(JournalWrite(order: .insert(settled))) == .committed)
                let tombstone = Tombstone(kind: .payout, mrn: mrn, outcome: .succeeded, settlementEventID: nil, fingerprint: "f", flag: nil, prunedAt: 10)
                async let prune = a.commit(JournalWrite(order: .delete(kind: .payout, mrn: mrn, expectedVersion: 1), tombstone: tombstone))
                async let insert = b.commit(JournalWrite(order: .insert(newOrder(mrn))))
                let (pruned, inserted) = try await (prune, insert)
                #expect(pruned == .committed)
                #expect(inserted != .committed, "\(mrn): the order existed, then its tombstone did")
                #expect(try await b.journaled(.payout, mrn) == .tombstone(tombstone))
            }
        }
    }

    @Test("two replicas claiming due orders and due events at once never get the same row")
    func claimsAcrossReplicas() async throws {
        try await withReplicas { (a: PostgresLedger, b: PostgresLedger) async throws in
            let count = 120
            for n in 0..<count {
                var order = newOrder("P-claim-\(n)")
                order.nextQueryAt = Millis(n)
                #expect(try await a.commit(JournalWrite(order: .insert(order), events: [event("evt_claim_\(n)", mrn: order.mrn, at: Millis(n))])) == .committed)
            }
            let now: Millis = 10_000
            let orders = try await withThrowingTaskGroup(of: [String].self) { group in
                for replica in [a, b, a, b] {
                    group.addTask {
                        var mine: [String] = []
                        while true {
                            let claimed = try await replica.claimDueOrders(now: now, lease: 60_000, limit: 7)
                            if claimed.isEmpty { return mine }
                            mine += claimed.map(\.mrn)
                        }
                    }
                }
                return try await group.reduce(into: []) { $0 += $1 }
            }
            #expect(orders.count == count && Set(orders).count == count, "\(orders.count) claims of \(Set(orders).count) orders")
            let events = try await withThrowingTaskGroup(of: [String].self) { group in
                for replica in [a, b, a, b] {
                    group.addTask {
                        var mine: [String] = []
                        while true {
                            let claimed = try await replica.claimDueEvents(now: now, lease: 60_000, limit: 5, excluding: [])
                            if claimed.isEmpty { return mine }
                            mine += claimed.map(\.id)
                        }
                    }
                }
                return try await group.reduce(into: []) { $0 += $1 }
            }
            #expect(events.count == count && Set(events).count == count, "\(events.count) claims of \(Set(events).count) events")
        }
    }

    @Test("a claim whose lease ran out (its replica died) is claimed by another")
    func expiredClaims() async throws {
        try await withReplicas { (a: PostgresLedger, b: PostgresLedger) async throws in
            var order = newOrder("P-lease")
            order.nextQueryAt = 10
            #expect(try await a.commit(JournalWrite(order: .insert(order), events: [event("evt_lease", mrn: "P-lease", at: 10)])) == .committed)
            #expect(try await a.claimDueOrders(now: 20, lease: 100, limit: 10).map(\.mrn) == ["P-lease"])
            #expect(try await a.claimDueEvents(now: 20, lease: 100, limit: 10, excluding: []).map(\.id) == ["evt_lease"])
            #expect(try await b.claimDueOrders(now: 119, lease: 100, limit: 10).isEmpty, "held until 120")
            #expect(try await b.claimDueEvents(now: 119, lease: 100, limit: 10, excluding: []).isEmpty, "held until 120")
            let orders = try await b.claimDueOrders(now: 120, lease: 100, limit: 10)
            #expect(orders.map(\.mrn) == ["P-lease"] && orders.first?.version == 3 && orders.first?.nextQueryAt == 220)
            #expect(try await b.claimDueEvents(now: 120, lease: 100, limit: 10, excluding: []).map(\.id) == ["evt_lease"])
            #expect(try await b.nextDueTime() == 220, "the next chance to claim it: when b's claim ends")
        }
    }

    @Test("a replica's claim that ran out is taken by another: the first can no longer renew it, and both finishing attempt 1 at once count it once")
    func takenOverClaims() async throws {
        try await withReplicas { (a: PostgresLedger, b: PostgresLedger) async throws in
            #expect(a.claimOwner != b.claimOwner)
            let count = 24
            let ids = (0..<count).map { "evt_over_\($0)" }
            #expect(try await a.commit(JournalWrite(events: ids.map { event($0, mrn: "P-\($0)", at: 1) })) == .committed)
            #expect(try await a.claimDueEvents(now: 10, lease: 100, limit: count, excluding: []).count == count)
            #expect(try await b.claimDueEvents(now: 109, lease: 100, limit: count, excluding: []).isEmpty, "a's until 110")
            #expect(try await b.claimDueEvents(now: 110, lease: 1000, limit: count, excluding: []).count == count, "a stalled past its lease")
            #expect(try await a.renewEventClaims(ids: Set(ids), until: 2000).isEmpty, "b's now")
            #expect(try await b.renewEventClaims(ids: Set(ids), until: 2000) == Set(ids))
            // Both made attempt 1 of every event; they come back at once with different answers (a: 2xx on even events).
            try await withThrowingTaskGroup(of: Void.self) { group in
                for (n, id) in ids.enumerated() {
                    group.addTask {
                        let delivered = n % 2 == 0
                        try await a.finishAttempt(DeliveryAttempt(eventID: id, attempt: 1, url: "http://x", statusCode: delivered ? 200 : 500, error: nil,
                                                                  durationMillis: 1, at: 50), next: delivered ? .delivered : .retry(at: 5000))
                    }
                    group.addTask {
                        try await b.finishAttempt(DeliveryAttempt(eventID: id, attempt: 1, url: "http://x", statusCode: 503, error: nil, durationMillis: 1, at: 150),
                                                  next: .retry(at: 3000))
                    }
                }
                try await group.waitForAll()
            }
            for (n, id) in ids.enumerated() {
                let (event, attempts) = try #require(try await b.event(id: id))
                #expect(attempts.count == 2 && event.attempts == 1, "\(id): two requests, one slot: \(event)")
                if n % 2 == 0 {
                    #expect(event.status == .delivered, "\(id): a's 2xx is kept whichever finished first")
                } else {
                    #expect(event.status == .pending && event.nextAttemptAt == 3000, "\(id): b's claim decides the retry: \(event)")
                }
            }
            #expect(try await a.claimDueEvents(now: 2999, lease: 100, limit: count, excluding: []).isEmpty, "b's claims were released by its finish")
            #expect(try await a.claimDueEvents(now: 3000, lease: 100, limit: count, excluding: []).count == count / 2)
        }
    }

    @Test("a SQLite ledger copied into PostgreSQL: every value survives, in pages; a target holding rows is refused and left as it was")
    func importFromSQLite() async throws {
        let source = try temporaryLedger()
        // Orders in several states, more than a page of them, with every column set somewhere.
        var expectedOrders: [Order] = []
        for n in 0..<7 {
            var order = newOrder("P-copy-\(n)", state: n % 2 == 0 ? .pending : .unknown, at: Millis(n))
            order.nextQueryAt = 1000 + Millis(n)
            order.answer = RecordedAnswer(status: 202, body: #"{"mrn":"P-copy-\#(n)"}"#)
            order.verdict = .accepted
            #expect(try await source.commit(JournalWrite(order: .insert(order))) == .committed)
            expectedOrders.append(order)
        }
        var settled = Order(kind: .deposit, mrn: "D-copy", amount: "100", channelId: 2, notifyUrl: "https://app.example/hooks", state: .succeeded,
                            request: "{}", fingerprint: "f", createdAt: 5)
        settled.paidAmount = "150.00"
        settled.settledSource = .callback
        settled.settledAt = 9
        settled.settlementEventID = "evt_copy_pending"
        settled.flags = [OrderFlag(code: .amountMismatch, detail: "paid 150.00 for 100", at: 9)]
        settled.closedAt = 9
        settled.version = 3
        let receipt = CallbackReceipt(kind: .deposit, mrn: "D-copy", outcome: .succeeded, duplicate: false, body: "amount=150.00", sourceAddress: "203.0.113.7", at: 9)
        #expect(try await source.commit(JournalWrite(order: .insert(settled), events: [event("evt_copy_pending", mrn: "D-copy", at: 9),
                                                                                        event("evt_copy_failed", mrn: "D-copy", at: 10),
                                                                                        event("evt_copy_delivered", mrn: "D-copy", at: 11)],
                                                     receipt: receipt, durable: true)) == .committed)
        expectedOrders.append(settled)
        let tombstone = Tombstone(kind: .payout, mrn: "P-pruned", outcome: .succeeded, settlementEventID: "evt_gone", fingerprint: "f", flag: nil, prunedAt: 12)
        #expect(try await source.commit(JournalWrite(tombstone: tombstone)) == .committed)
        #expect(try await source.claimDueEvents(now: 20, lease: 100, limit: 10, excluding: []).count == 3)
        try await source.finishAttempt(DeliveryAttempt(eventID: "evt_copy_pending", attempt: 1, url: "http://x", statusCode: 500, error: nil, durationMillis: 3, at: 21),
                                       next: .retry(at: 500))
        try await source.finishAttempt(DeliveryAttempt(eventID: "evt_copy_failed", attempt: 1, url: "http://x", statusCode: 410, error: nil, durationMillis: 3, at: 21),
                                       next: .fail(reason: "gone"))
        try await source.finishAttempt(DeliveryAttempt(eventID: "evt_copy_delivered", attempt: 1, url: "http://x", statusCode: nil, error: "timeout", durationMillis: 3,
                                                       at: 21), next: .retry(at: 30))
        #expect(try await source.claimDueEvents(now: 30, lease: 100, limit: 10, excluding: []).map(\.id) == ["evt_copy_delivered"])
        try await source.finishAttempt(DeliveryAttempt(eventID: "evt_copy_delivered", attempt: 2, url: "http://x", statusCode: 204, error: nil, durationMillis: 3, at: 31),
                                       next: .delivered)
        try await source.recordRejection(RejectedCallback(kind: .payout, mrn: "P-x", reason: "bad_signature", detail: "d", sourceAddress: "198.51.100.1", body: "b", at: 40))

        try await PostgresTestDatabase.withFreshDatabase { (url: String) async throws in
            let settings = try PostgresSettings(url: url, poolSize: 2, timeout: .seconds(30))
            let counts = try await PostgresLedger.importLedger(from: source, into: settings, logger: PostgresTestDatabase.quietLogger, pageSize: 3)
            #expect(counts.orders == 8 && counts.openOrders == 7 && counts.tombstones == 1 && counts.pendingEvents == 1 && counts.failedEvents == 1
                    && counts.deliveredEvents == 1 && counts.attempts == 4 && counts.receipts == 1 && counts.rejections == 1, "\(counts)")
            let target = try await PostgresLedger.open(settings, logger: PostgresTestDatabase.quietLogger)
            try await PostgresTestDatabase.running(target) {
                for order in expectedOrders {
                    #expect(try await target.journaled(order.kind, order.mrn) == .order(order), "\(order.mrn): every column survives")
                }
                #expect(try await target.journaled(.payout, "P-pruned") == .tombstone(tombstone))
                #expect(try await target.events(EventQuery()) == (try await source.events(EventQuery())), "events, in order, with their status and schedule")
                for id in ["evt_copy_pending", "evt_copy_failed", "evt_copy_delivered"] {
                    #expect(try await target.event(id: id)?.1 == (try await source.event(id: id)?.1), "\(id): its attempts")
                }
                #expect(try await target.rejections(limit: 10) == (try await source.rejections(limit: 10)))
                let receipts = try await target.rows("test", "SELECT body, source_address FROM callback_receipts WHERE mrn = 'D-copy'")
                #expect(try receipts.map { try $0.decode((String, String).self) }.map(\.0) == ["amount=150.00"])
                // Claims are not copied: the pending event is due for whoever claims it first.
                #expect(try await target.claimDueEvents(now: 500, lease: 100, limit: 10, excluding: []).map(\.id) == ["evt_copy_pending"])
                #expect(try await target.claimDueOrders(now: 2000, lease: 100, limit: 10).count == 7)
            }
            do {
                _ = try await PostgresLedger.importLedger(from: source, into: settings, logger: PostgresTestDatabase.quietLogger)
                Issue.record("a second copy into the same database went through")
            } catch {
                let message = (error as? LedgerError)?.message ?? "\(error)"
                #expect(message.contains("already holds a ledger") && message.contains("orders"), "\(message)")
            }
            #expect(try await PostgresTestDatabase.integer(url, "SELECT COUNT(*) FROM outbox_events") == 3, "nothing was added")
        }
    }

    @Test("replicas opening a new database at the same moment migrate it once")
    func migrationsOnce() async throws {
        try await PostgresTestDatabase.withFreshDatabase { (url: String) async throws in
            let settings = try PostgresSettings(url: url, poolSize: 2, timeout: .seconds(20))
            let opened = try await withThrowingTaskGroup(of: PostgresLedger.self) { group in
                for _ in 0..<4 { group.addTask { try await PostgresLedger.open(settings, logger: PostgresTestDatabase.quietLogger) } }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            #expect(opened.flatMap(\.appliedMigrations).sorted() == PostgresLedger.migrations.map(\.version), "each version applied by one of them")
            let ledger = try #require(opened.first)
            try await PostgresTestDatabase.running(ledger) {
                let rows = try await ledger.rows("test", "SELECT version FROM schema_migrations ORDER BY version")
                #expect(try rows.map { try $0.decode(Int.self) } == PostgresLedger.migrations.map(\.version))
                #expect(try await ledger.commit(JournalWrite(order: .insert(newOrder("P-m")))) == .committed, "the schema works")
            }
            let again = try await PostgresLedger.open(settings, logger: PostgresTestDatabase.quietLogger)
            #expect(again.appliedMigrations.isEmpty, "nothing left to apply")
        }
    }

    @Test("a commit that queues an event wakes a replica following the outbox; one without events does not")
    func notifications() async throws {
        try await withReplicas { (a: PostgresLedger, b: PostgresLedger) async throws in
            let wakes = Counter()
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { await a.followOutbox { wakes.add() } }
                defer { group.cancelAll() }
                // The first call says it listens (and catches up on what came before).
                #expect(await eventually(.seconds(10)) { wakes.count >= 1 }, "listening")
                #expect(try await b.commit(JournalWrite(order: .insert(newOrder("P-quiet")))) == .committed)
                #expect(try await b.commit(JournalWrite(events: [event("evt_notify", mrn: "P-n")])) == .committed)
                #expect(await eventually(.seconds(10)) { wakes.count >= 2 }, "woken by the other replica's commit")
                try await Task.sleep(for: .milliseconds(300))
                #expect(wakes.count == 2, "once: the commit without events sent nothing")
            }
        }
    }

    @Test("the server closes every connection (a restart, a failover): calls work again, and the outbox is listened to again")
    func reconnects() async throws {
        try await withReplicas { (a: PostgresLedger, b: PostgresLedger) async throws in
            let wakes = Counter()
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { await a.followOutbox { wakes.add() } }
                defer { group.cancelAll() }
                #expect(await eventually(.seconds(10)) { wakes.count >= 1 }, "listening")
                #expect(try await a.commit(JournalWrite(order: .insert(newOrder("P-before")))) == .committed)
                let adminURL = try #require(PostgresTestDatabase.adminURL)
                let terminated = try await PostgresTestDatabase.integer(adminURL, """
                    SELECT COUNT(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = '\(a.settings.database)' AND pid <> pg_backend_pid()
                    """)
                #expect(terminated >= 2, "the pools' connections and the listener's")
                var committed = false
                for n in 0..<50 where !committed {
                    committed = (try? await a.commit(JournalWrite(order: .insert(newOrder("P-after-\(n)"))))) == .committed
                    if !committed { try await Task.sleep(for: .milliseconds(200)) }
                }
                #expect(committed, "a commit went through again")
                #expect(await eventually(.seconds(15)) { wakes.count >= 2 }, "listening again (and catching up)")
                let before = wakes.count
                #expect(try await b.commit(JournalWrite(events: [event("evt_after", mrn: "P-after")])) == .committed)
                #expect(await eventually(.seconds(10)) { wakes.count > before }, "notified again")
            }
        }
    }

    @Test("an unreachable database: open fails within its timeout, naming the server and not the password; calls and isHealthy fail fast")
    func unreachable() async throws {
        let closedPort = try await closedLoopbackPort()
        let settings = try PostgresSettings(url: "postgres://app:s3cret-pw@127.0.0.1:\(closedPort)/pay", poolSize: 2, timeout: .seconds(1))
        let clock = ContinuousClock()
        var started = clock.now
        do {
            _ = try await PostgresLedger.open(settings, logger: PostgresTestDatabase.quietLogger)
            Issue.record("opened a closed port")
        } catch {
            #expect(error.message.contains("127.0.0.1:\(closedPort)/pay"), "\(error)")
            #expect(!error.message.contains("s3cret-pw"))
        }
        // Bounds well above the 1 s deadline (a loaded two-core machine resumes timers late), far below the
        // minute a pooled call would otherwise wait for the pool's circuit breaker.
        #expect(clock.now - started < .seconds(15), "open failed after \(clock.now - started)")

        // A ledger whose database went away after it opened.
        let ledger = PostgresLedger(client: PostgresClient(configuration: settings.clientConfiguration(), backgroundLogger: PostgresTestDatabase.quietLogger),
                                    settings: settings, logger: PostgresTestDatabase.quietLogger, appliedMigrations: [])
        try await PostgresTestDatabase.running(ledger) {
            started = clock.now
            #expect(await ledger.isHealthy() == false)
            #expect(clock.now - started < .seconds(15), "isHealthy answered after \(clock.now - started)")
            started = clock.now
            await #expect(throws: LedgerError.self) { try await ledger.journaled(.payout, "P-x") }
            await #expect(throws: LedgerError.self) { try await ledger.commit(JournalWrite(order: .insert(newOrder("P-x")))) }
            #expect(clock.now - started < .seconds(20), "two calls failed after \(clock.now - started)")
        }
    }
}

@Suite("PostgreSQL settings")
struct PostgresSettingsTests {
    @Test("URLs as libpq reads them: user, password, host, port, database, sslmode; the password never prints")
    func urls() throws {
        let s = try PostgresSettings(url: "postgresql://app:p%40ss%3Aword@db.internal:6432/pay?sslmode=verify-full&sslrootcert=/etc/ca.pem")
        #expect(s.host == "db.internal" && s.port == 6432 && s.username == "app" && s.database == "pay")
        #expect(s.sslMode == .verifyFull && s.sslRootCert == "/etc/ca.pem")
        #expect(s.description == "postgres://db.internal:6432/pay")
        var dumped = ""
        dump(s, to: &dumped)
        #expect(!"\(s)".contains("p@ss") && !String(reflecting: s).contains("p@ss") && !dumped.contains("p@ss"))
        let defaults = try PostgresSettings(url: "postgres://app@[::1]")
        #expect(defaults.host == "::1" && defaults.port == 5432 && defaults.database == "app" && defaults.sslMode == .prefer)
        #expect(try PostgresSettings(url: "postgres://app@db/pay", password: "from-file").description == "postgres://db:5432/pay")
        for bad in ["postgres://db/pay", "postgres://app:pw@:5432/pay", "postgres://app@db:99999/pay", "postgres://app@db/pay?sslmode=sometimes",
                    "postgres://app:pw@db/pay?host=/tmp", "mysql://app@db/pay"] {
            #expect(throws: LedgerError.self, "\(bad)") { try PostgresSettings(url: bad) }
        }
        do {
            _ = try PostgresSettings(url: "postgres://app:hunter2@db/pay", password: "other")
            Issue.record("two passwords accepted")
        } catch {
            #expect(!error.message.contains("hunter2") && !error.message.contains("other"))
        }
        do {
            _ = try PostgresSettings(url: "postgres://app:hunter2@db:x/pay")
            Issue.record("a malformed port accepted")
        } catch {
            #expect(!error.message.contains("hunter2"), "\(error.message)")
        }
    }
}

final class Counter: Sendable {
    private let value = Mutex(0)
    func add() { value.withLock { $0 += 1 } }
    var count: Int { value.withLock { $0 } }
}

/// Polls `condition` every 10 ms for at most `limit`.
func eventually(_ limit: Duration, _ condition: () -> Bool) async -> Bool {
    let deadline = ContinuousClock.now + limit
    while ContinuousClock.now < deadline {
        if condition() { return true }
        try? await Task.sleep(for: .milliseconds(10))
    }
    return condition()
}

/// A loopback port nothing listens on (bound, then closed).
func closedLoopbackPort() async throws -> Int {
    let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton).bind(host: "127.0.0.1", port: 0).get()
    let port = channel.localAddress?.port ?? 1
    try await channel.close()
    return port
}
