import Foundation
import GRDB
import GatewayProtocol
import LedgerPostgres
import Orders
import PostgresTestSupport
import Testing

@testable import Ledger

func temporaryLedger() throws -> SQLiteLedger {
    let folder = FileManager.default.temporaryDirectory.appendingPathComponent("ledger-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    return try SQLiteLedger(path: folder.appendingPathComponent("l.db").path)
}

/// The ledger implementations every behavioural test runs against: SQLite always, PostgreSQL when
/// PAYSIDECAR_TEST_POSTGRES_URL names a server (CI sets it; the "PostgreSQL ledger" suite shows as skipped
/// when it is not set).
enum Backend: String, Sendable, CustomTestStringConvertible {
    case sqlite
    case postgres

    static var available: [Backend] { PostgresTestDatabase.isConfigured ? [.sqlite, .postgres] : [.sqlite] }

    var testDescription: String { rawValue }
}

/// A fresh, empty ledger of `backend` for `body` (for PostgreSQL, on a database of its own, dropped after).
func withLedger<R>(_ backend: Backend, _ body: (any Ledger) async throws -> R) async throws -> R {
    switch backend {
    case .sqlite: return try await body(try temporaryLedger())
    case .postgres: return try await PostgresTestDatabase.withLedger { try await body($0) }
    }
}

/// A payout journaled at version 1.
func newOrder(_ mrn: String, state: OrderState = .pending, at: Millis = 1) -> Order {
    var order = Order(kind: .payout, mrn: mrn, amount: "1", state: state, request: "{}", fingerprint: "f", createdAt: at)
    order.version = 1
    return order
}

func event(_ id: String, mrn: String, at: Millis = 1) -> OutboxDraft {
    OutboxDraft(id: id, type: .payoutSucceeded, kind: .payout, mrn: mrn, body: "{}", notifyUrl: nil, createdAt: at)
}

@Suite("SQLite ledger")
struct SQLiteLedgerTests {
    @Test("group commit: concurrent durable writes share commits, each answered after its own; a failing write rolls back only itself")
    func groupCommit() async throws {
        let l = try temporaryLedger()
        let count = 300
        let results = try await withThrowingTaskGroup(of: CommitResult.self) { group in
            for n in 0..<count {
                group.addTask {
                    try await l.commit(JournalWrite(order: .insert(newOrder("P-group-\(n)")), events: [event("evt_group_\(n)", mrn: "P-group-\(n)")], durable: true))
                }
            }
            group.addTask {
                await failingWrite(l, durable: true)
                return .committed
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        #expect(results.allSatisfy { $0 == .committed })
        #expect(try await l.events(EventQuery(limit: 1000)).count == count, "every write's event is stored")
        #expect(try await l.journaled(.payout, "P-doomed") == .nothing, "the failed write left nothing")
        #expect(l.writes.commits < count, "\(l.writes.commits) commits for \(count) writes: grouped")
    }

    @Test("a lone journal write commits on the caller's thread; a durable one on the writer queue; a failing one rolls back and throws")
    func inlineWrite() async throws {
        let l = try temporaryLedger()
        let caller = UInt(pthread_self())
        let inline = try await l.writes.write(durable: false) { db -> UInt in
            try db.execute(sql: OrderRow.insertSQL, arguments: OrderRow.insertArguments(newOrder("P-inline")))
            return UInt(pthread_self())
        }
        #expect(inline == caller, "committed where it was called")
        #expect(try await l.journaled(.payout, "P-inline") != .nothing)
        let before = UInt(pthread_self())
        let durable = try await l.writes.write(durable: true) { _ in UInt(pthread_self()) }
        #expect(durable != before, "a durable commit waits for the disk on the database's own queue")
        await failingWrite(l, durable: false)
        #expect(try await l.journaled(.payout, "P-doomed") == .nothing, "the failed write left nothing")
        #expect(try await l.commit(JournalWrite(order: .insert(newOrder("P-after")))) == .committed, "the writer is free again")
    }

    /// A write that inserts the order P-doomed, then fails: it must throw (and, the callers check, leave nothing).
    func failingWrite(_ l: SQLiteLedger, durable: Bool) async {
        do {
            _ = try await l.writes.write(durable: durable) { db -> Int in
                try db.execute(sql: OrderRow.insertSQL, arguments: OrderRow.insertArguments(newOrder("P-doomed")))
                try db.execute(sql: "INSERT INTO no_such_table VALUES (1)")
                return 0
            }
            Issue.record("the failing write succeeded")
        } catch {}
    }

    @Test("a create a dead process left sending is due at once when the database is opened again")
    func interruptedSends() async throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("ledger-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let path = folder.appendingPathComponent("l.db").path
        let farFuture: Millis = nowMillis() + 3_600_000
        do {
            let first = try SQLiteLedger(path: path)
            var sending = newOrder("P-crash", state: .sending)
            sending.sendingSince = 1
            sending.nextQueryAt = farFuture
            #expect(try await first.commit(JournalWrite(order: .insert(sending))) == .committed)
            #expect(throws: LedgerError.self) { try SQLiteLedger(path: path) }
            #expect(try await first.claimDueOrders(now: nowMillis(), lease: 1000, limit: 10).isEmpty, "not due while its process lives")
        }
        let second = try SQLiteLedger(path: path)
        let due = try await second.claimDueOrders(now: nowMillis() + 1, lease: 1000, limit: 10)
        #expect(due.map(\.mrn) == ["P-crash"])
        #expect(due.first?.state == .sending, "the storage only makes it due; the order rules call it interrupted")
    }

    @Test("a v3 database (before the state machine) is migrated: orders keep their state, flags and settlement event")
    func migratesV3() async throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("ledger-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let path = folder.appendingPathComponent("l.db").path
        do {
            let queue = try DatabaseQueue(path: path)
            var migrator = SQLiteLedger.migrator
            migrator.eraseDatabaseOnSchemaChange = false
            try migrator.migrate(queue, upTo: "v3: flagged orders, counted by the metrics endpoint")
            try await queue.write { db in
                try db.execute(sql: """
                    INSERT INTO orders (kind, mrn, amount, state, known, created_at, updated_at, request, fingerprint, response_status, response_body, next_query_at, flag)
                    VALUES ('payout', 'P-old', '500', 'succeeded', 1, 5, 9, '{}', 'fp', 202, '{"mrn":"P-old"}', NULL, 'query reported failed after the order succeeded'),
                           ('payout', 'P-unknown', '7', 'unknown', 1, 5, 9, '{}', 'fp2', 504, '{}', 100, NULL),
                           ('deposit', 'D-sending', '7', 'sending', 1, 5, 9, '{}', 'fp3', NULL, NULL, NULL, NULL);
                    INSERT INTO outbox_events (id, type, kind, mrn, body, status, created_at) VALUES ('evt_old', 'payout.succeeded', 'payout', 'P-old', '{}', 'delivered', 9);
                    """)
            }
        }
        let l = try SQLiteLedger(path: path)
        guard case .order(let old) = try await l.journaled(.payout, "P-old") else { Issue.record("P-old is gone"); return }
        #expect(old.state == .succeeded && old.closedAt == 9 && old.settlementEventID == "evt_old" && old.verdict == .accepted)
        #expect(old.flag?.code == .contradictingOutcome && old.flag?.detail.contains("failed") == true)
        #expect(old.answer == RecordedAnswer(status: 202, body: #"{"mrn":"P-old"}"#))
        guard case .order(let unknown) = try await l.journaled(.payout, "P-unknown") else { Issue.record("P-unknown is gone"); return }
        #expect(unknown.state == .unknown && unknown.verdict == .unknown && unknown.sendCount == 1 && unknown.nextQueryAt == 100 && unknown.closedAt == nil)
        guard case .order(let sending) = try await l.journaled(.deposit, "D-sending") else { Issue.record("D-sending is gone"); return }
        #expect(sending.sendingSince == 9 && sending.nextQueryAt != nil, "left sending by v3: due for the reconciler")
        #expect(old.traceParent == nil && sending.traceParent == nil, "v5 adds the trace context; older rows hold none")
        #expect(try await l.events(EventQuery()).map(\.traceParent) == [nil])
    }
}

@Suite("Ledger: journal writes")
struct JournalWriteTests {
    @Test("an insert of a journaled mrn conflicts and returns what is there; an update based on an old version conflicts", arguments: Backend.available)
    func versions(_ backend: Backend) async throws {
        try await withLedger(backend) { (l: any Ledger) async throws in
            let order = newOrder("P-v")
            #expect(try await l.commit(JournalWrite(order: .insert(order))) == .committed)
            #expect(try await l.commit(JournalWrite(order: .insert(order))) == .conflict(.order(order)))
            var next = order
            next.state = .succeeded
            next.version = 2
            #expect(try await l.commit(JournalWrite(order: .update(next, expectedVersion: 1), events: [event("evt_v", mrn: "P-v")])) == .committed)
            var stale = order
            stale.state = .failed
            stale.version = 2
            #expect(try await l.commit(JournalWrite(order: .update(stale, expectedVersion: 1), events: [event("evt_stale", mrn: "P-v")])) == .conflict(.order(next)))
            #expect(try await l.events(EventQuery()).map(\.id) == ["evt_v"], "a refused write writes nothing, its events included")
            #expect(try await l.journaled(.payout, "P-v") == .order(next))
        }
    }

    @Test("an order's traceparent is kept with it and with its events, through inserts, updates, claims and listings", arguments: Backend.available)
    func traceParent(_ backend: Backend) async throws {
        try await withLedger(backend) { (l: any Ledger) async throws in
            let traceParent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
            var order = newOrder("P-trace")
            order.traceParent = traceParent
            var draft = event("evt_trace", mrn: "P-trace")
            draft.traceParent = traceParent
            #expect(try await l.commit(JournalWrite(order: .insert(order))) == .committed)
            #expect(try await l.journaled(.payout, "P-trace") == .order(order))
            var settled = order
            settled.state = .succeeded
            settled.version = 2
            #expect(try await l.commit(JournalWrite(order: .update(settled, expectedVersion: 1), events: [draft, event("evt_plain", mrn: "P-trace")])) == .committed)
            #expect(try await l.journaled(.payout, "P-trace") == .order(settled))
            let claimed = try await l.claimDueEvents(now: 10, lease: 1_000, limit: 10, excluding: [])
            #expect(claimed.map(\.id) == ["evt_trace", "evt_plain"] && claimed.map(\.traceParent) == [traceParent, nil])
            #expect(try await l.event(id: "evt_trace")?.0.traceParent == traceParent)
        }
    }

    @Test("an event id already in the outbox is the same fact: kept once", arguments: Backend.available)
    func eventsOnce(_ backend: Backend) async throws {
        try await withLedger(backend) { (l: any Ledger) async throws in
            #expect(try await l.commit(JournalWrite(events: [event("evt_same", mrn: "P-e")])) == .committed)
            #expect(try await l.commit(JournalWrite(events: [event("evt_same", mrn: "P-e"), event("evt_other", mrn: "P-e")])) == .committed)
            #expect(try await l.events(EventQuery()).map(\.id) == ["evt_same", "evt_other"])
        }
    }

    @Test("pruning: the delete and its tombstone in one write; the tombstone keeps the mrn taken and is itself pruned later", arguments: Backend.available)
    func tombstones(_ backend: Backend) async throws {
        try await withLedger(backend) { (l: any Ledger) async throws in
            var order = newOrder("P-t", state: .succeeded)
            order.closedAt = 5
            #expect(try await l.commit(JournalWrite(order: .insert(order), receipt: CallbackReceipt(kind: .payout, mrn: "P-t", outcome: .succeeded, duplicate: false, body: "b", sourceAddress: nil, at: 5))) == .committed)
            #expect(try await l.closedOrders(before: 6, limit: 10).map(\.mrn) == ["P-t"])
            #expect(try await l.closedOrders(before: 5, limit: 10).isEmpty)
            let tombstone = Tombstone(kind: .payout, mrn: "P-t", outcome: .succeeded, settlementEventID: "evt_t", fingerprint: "f", flag: nil, prunedAt: 100)
            #expect(try await l.commit(JournalWrite(order: .delete(kind: .payout, mrn: "P-t", expectedVersion: 1), tombstone: tombstone)) == .committed)
            #expect(try await l.journaled(.payout, "P-t") == .tombstone(tombstone))
            #expect(try await l.commit(JournalWrite(order: .insert(newOrder("P-t")))) == .conflict(.tombstone(tombstone)), "a tombstoned mrn is taken")
            #expect(try await l.pruneTombstones(before: 100) == 0)
            #expect(try await l.pruneTombstones(before: 101) == 1)
            #expect(try await l.journaled(.payout, "P-t") == .nothing)
        }
    }

    @Test("claiming due orders: each is claimed once until its lease ends", arguments: Backend.available)
    func claims(_ backend: Backend) async throws {
        try await withLedger(backend) { (l: any Ledger) async throws in
            for (mrn, due) in [("P-due", Millis(10)), ("P-later", Millis(1000))] {
                var order = newOrder(mrn)
                order.nextQueryAt = due
                #expect(try await l.commit(JournalWrite(order: .insert(order))) == .committed)
            }
            let claimed = try await l.claimDueOrders(now: 50, lease: 100, limit: 10)
            #expect(claimed.map(\.mrn) == ["P-due"])
            #expect(claimed.first?.nextQueryAt == 150 && claimed.first?.version == 2)
            #expect(try await l.claimDueOrders(now: 60, lease: 100, limit: 10).isEmpty, "claimed until 150")
            #expect(try await l.claimDueOrders(now: 150, lease: 100, limit: 10).map(\.mrn) == ["P-due"])
            let reclaimed = try #require(try await l.claimDueOrders(now: 250, lease: 0, limit: 1).first)
            #expect(try await l.journaled(.payout, "P-due") == .order(reclaimed), "the claim is what the journal holds")
        }
    }

    @Test("delivered events are pruned after their retention with their attempts; pending and failed ones stay", arguments: Backend.available)
    func eventRetention(_ backend: Backend) async throws {
        try await withLedger(backend) { (l: any Ledger) async throws in
            #expect(try await l.commit(JournalWrite(events: [event("evt_done", mrn: "P-1"), event("evt_waiting", mrn: "P-2"), event("evt_failed", mrn: "P-3")])) == .committed)
            let claimed = try await l.claimDueEvents(now: 10, lease: 100, limit: 10, excluding: [])
            #expect(claimed.count == 3)
            try await l.finishAttempt(DeliveryAttempt(eventID: "evt_done", attempt: 1, url: "http://x", statusCode: 200, error: nil, durationMillis: 1, at: 20), next: .delivered)
            try await l.finishAttempt(DeliveryAttempt(eventID: "evt_failed", attempt: 1, url: "http://x", statusCode: 410, error: nil, durationMillis: 1, at: 20), next: .fail(reason: "gone"))
            try await l.finishAttempt(DeliveryAttempt(eventID: "evt_waiting", attempt: 1, url: "http://x", statusCode: 500, error: nil, durationMillis: 1, at: 20), next: .retry(at: 30))
            #expect(try await l.pruneDeliveredEvents(before: 20) == 0, "delivered at 20: not before 20")
            #expect(try await l.pruneDeliveredEvents(before: 21) == 1)
            #expect(try await l.events(EventQuery()).map(\.id).sorted() == ["evt_failed", "evt_waiting"])
            #expect(try await l.event(id: "evt_done") == nil)
        }
    }

    @Test("statistics count what the metrics show: due and open orders, flagged ones, the outbox", arguments: Backend.available)
    func statistics(_ backend: Backend) async throws {
        try await withLedger(backend) { (l: any Ledger) async throws in
            var due = newOrder("P-s1")
            due.nextQueryAt = 10
            var open = newOrder("P-s2")
            open.nextQueryAt = 1000
            var flagged = newOrder("P-s3", state: .succeeded)
            flagged.flags = [OrderFlag(code: .amountMismatch, detail: "d", at: 1)]
            for order in [due, open, flagged] { _ = try await l.commit(JournalWrite(order: .insert(order))) }
            _ = try await l.commit(JournalWrite(events: [event("evt_s", mrn: "P-s3", at: 7)]))
            let stats = try await l.statistics(now: 50)
            #expect(stats == LedgerStatistics(pendingEvents: 1, oldestPendingEventAt: 7, failedEvents: 0, reconcileDue: 1, reconcileOpen: 2, flaggedOrders: 1))
            #expect(try await l.flaggedOrders(limit: 10).map(\.mrn) == ["P-s3"])
            guard case .order(let stored) = try await l.journaled(.payout, "P-s3") else { Issue.record("gone"); return }
            #expect(stored.flags == flagged.flags, "flags survive the round trip")
        }
    }

    @Test("the outbox: claims leave out the caller's own events and claimed ones; a redelivery queues a failed event again; listing pages by cursor",
          arguments: Backend.available)
    func outbox(_ backend: Backend) async throws {
        try await withLedger(backend) { (l: any Ledger) async throws in
            #expect(try await l.commit(JournalWrite(events: [event("evt_a", mrn: "P-a", at: 1), event("evt_b", mrn: "P-b", at: 2), event("evt_c", mrn: "P-c", at: 3)])) == .committed)
            #expect(try await l.nextDueTime() == 1)
            let first = try await l.claimDueEvents(now: 10, lease: 100, limit: 2, excluding: ["evt_a"])
            #expect(first.map(\.id) == ["evt_b", "evt_c"], "due order, the excluded one left out")
            #expect(try await l.claimDueEvents(now: 20, lease: 100, limit: 10, excluding: []).map(\.id) == ["evt_a"], "claimed ones are not claimed again")
            #expect(try await l.claimDueEvents(now: 30, lease: 100, limit: 10, excluding: []).isEmpty)
            try await l.failEvent(id: "evt_b", reason: "no target", at: 40)
            try await l.finishAttempt(DeliveryAttempt(eventID: "evt_c", attempt: 1, url: "http://x", statusCode: nil, error: "timeout", durationMillis: 5, at: 40),
                                      next: .retry(at: 500))
            let (c, attempts) = try #require(try await l.event(id: "evt_c"))
            #expect(c.status == .pending && c.attempts == 1 && c.nextAttemptAt == 500 && c.lastError == "timeout")
            #expect(attempts == [DeliveryAttempt(eventID: "evt_c", attempt: 1, url: "http://x", statusCode: nil, error: "timeout", durationMillis: 5, at: 40)])
            #expect(try await l.claimDueEvents(now: 499, lease: 100, limit: 10, excluding: ["evt_a"]).isEmpty, "not due before its retry")
            let failed = try await l.events(EventQuery(status: .failed))
            #expect(failed.map(\.id) == ["evt_b"] && failed.first?.lastError == "no target")
            let again = try #require(try await l.redeliver(id: "evt_b", at: 600))
            #expect(again.status == .pending && again.nextAttemptAt == 600 && again.scheduleBase == again.attempts && again.lastError == nil)
            #expect(try await l.redeliver(id: "evt_none", at: 600) == nil)
            #expect(try await l.claimDueEvents(now: 600, lease: 100, limit: 10, excluding: ["evt_a"]).map(\.id) == ["evt_c", "evt_b"])
            #expect(try await l.events(EventQuery(limit: 2)).map(\.id) == ["evt_a", "evt_b"])
            #expect(try await l.events(EventQuery(after: "evt_b", limit: 2)).map(\.id) == ["evt_c"])
            #expect(try await l.events(EventQuery(type: .payoutSucceeded, mrn: "P-c")).map(\.id) == ["evt_c"])
        }
    }

    @Test("claims are renewed by their owner while attempts run, also after their lease ran out if nobody took the event; not once it is settled",
          arguments: Backend.available)
    func renewals(_ backend: Backend) async throws {
        try await withLedger(backend) { (l: any Ledger) async throws in
            #expect(try await l.commit(JournalWrite(events: [event("evt_r1", mrn: "P-r1"), event("evt_r2", mrn: "P-r2"), event("evt_r3", mrn: "P-r3")])) == .committed)
            #expect(try await l.claimDueEvents(now: 10, lease: 100, limit: 10, excluding: []).count == 3)
            #expect(try await l.renewEventClaims(ids: ["evt_r1", "evt_r2", "evt_r3", "evt_none"], until: 400) == ["evt_r1", "evt_r2", "evt_r3"])
            #expect(try await l.claimDueEvents(now: 300, lease: 100, limit: 10, excluding: []).isEmpty, "renewed until 400")
            // Past its lease, and nobody claimed it: still this owner's to renew.
            #expect(try await l.renewEventClaims(ids: ["evt_r1"], until: 900) == ["evt_r1"])
            #expect(try await l.finishAttempt(DeliveryAttempt(eventID: "evt_r2", attempt: 1, url: "http://x", statusCode: 204, error: nil, durationMillis: 1, at: 450),
                                              next: .delivered) == .applied)
            _ = try await l.redeliver(id: "evt_r3", at: 460)
            #expect(try await l.renewEventClaims(ids: ["evt_r1", "evt_r2", "evt_r3"], until: 1000) == ["evt_r1"], "delivered, and redelivered: not ours any more")
            #expect(try await l.claimDueEvents(now: 500, lease: 100, limit: 10, excluding: []).map(\.id) == ["evt_r3"])
            #expect(try await l.renewEventClaims(ids: [], until: 1000).isEmpty)
        }
    }

    @Test("an attempt that comes back after its claim passed on is recorded, counted once, and decides nothing, except that a 2xx still delivers",
          arguments: Backend.available)
    func supersededAttempts(_ backend: Backend) async throws {
        try await withLedger(backend) { (l: any Ledger) async throws in
            func attempt(_ id: String, _ n: Int, status: Int?, at: Millis) -> DeliveryAttempt {
                DeliveryAttempt(eventID: id, attempt: n, url: "http://x", statusCode: status, error: status == nil ? "timeout" : nil, durationMillis: 1, at: at)
            }
            let ids = ["evt_retry", "evt_late_2xx", "evt_late_fail", "evt_redelivered"]
            #expect(try await l.commit(JournalWrite(events: ids.map { event($0, mrn: "P-\($0)") })) == .committed)
            // Attempt 1 of each starts at 10 under a claim that runs out at 110 (the process stalls); at 200 the events are
            // claimed again and attempt 1 is made a second time. (With one owner, as here, the first attempt to come back
            // decides; with two, the one made under the current claim does: PostgresLedgerTests.takenOverClaims.)
            #expect(try await l.claimDueEvents(now: 10, lease: 100, limit: 10, excluding: []).count == 4)
            // Redelivered while attempt 1 runs: that attempt no longer decides.
            _ = try await l.redeliver(id: "evt_redelivered", at: 150)
            #expect(try await l.finishAttempt(attempt("evt_redelivered", 1, status: 503, at: 20), next: .retry(at: 900)) == .superseded)
            let redelivered = try #require(try await l.event(id: "evt_redelivered")).0
            #expect(redelivered.status == .pending && redelivered.attempts == 0 && redelivered.nextAttemptAt == 150)
            #expect(try await l.claimDueEvents(now: 200, lease: 100, limit: 10, excluding: []).count == 4)

            // The second attempt finishes first and decides; the first, back late, is history only.
            #expect(try await l.finishAttempt(attempt("evt_retry", 1, status: 500, at: 210), next: .retry(at: 700)) == .applied)
            #expect(try await l.finishAttempt(attempt("evt_retry", 1, status: nil, at: 20), next: .fail(reason: "exhausted")) == .superseded)
            let (retried, retriedAttempts) = try #require(try await l.event(id: "evt_retry"))
            #expect(retried.status == .pending && retried.attempts == 1 && retried.nextAttemptAt == 700 && retried.lastError == "HTTP 500",
                    "one slot, counted once: \(retried)")
            #expect(retriedAttempts.map(\.attempt) == [1, 1], "both requests are in the history")

            // The current attempt failed the event (410); the late one had a 2xx: the receiver has it.
            #expect(try await l.finishAttempt(attempt("evt_late_2xx", 1, status: 410, at: 210), next: .fail(reason: "gone")) == .applied)
            #expect(try await l.finishAttempt(attempt("evt_late_2xx", 1, status: 200, at: 20), next: .delivered) == .superseded)
            let late = try #require(try await l.event(id: "evt_late_2xx")).0
            #expect(late.status == .delivered && late.attempts == 1 && late.deliveredAt == 20 && late.nextAttemptAt == nil)

            // Delivered by the current attempt; a late failure changes nothing.
            #expect(try await l.finishAttempt(attempt("evt_late_fail", 1, status: 204, at: 210), next: .delivered) == .applied)
            #expect(try await l.finishAttempt(attempt("evt_late_fail", 1, status: 410, at: 20), next: .fail(reason: "gone")) == .superseded)
            let kept = try #require(try await l.event(id: "evt_late_fail")).0
            #expect(kept.status == .delivered && kept.attempts == 1 && kept.deliveredAt == 210)

            // The redelivery's attempt decides.
            #expect(try await l.finishAttempt(attempt("evt_redelivered", 1, status: 204, at: 210), next: .delivered) == .applied)
            let again = try #require(try await l.event(id: "evt_redelivered"))
            #expect(again.0.status == .delivered && again.0.attempts == 1 && again.1.count == 2)
        }
    }

    @Test("refused callbacks are kept newest first; a receipt and an update in one write", arguments: Backend.available)
    func rejectionsAndReceipts(_ backend: Backend) async throws {
        try await withLedger(backend) { (l: any Ledger) async throws in
            for n in 1...3 {
                try await l.recordRejection(RejectedCallback(kind: .deposit, mrn: n == 2 ? nil : "D-\(n)", reason: "bad_signature", detail: "d\(n)",
                                                             sourceAddress: "203.0.113.\(n)", body: "b", at: Millis(n)))
            }
            let newest = try await l.rejections(limit: 2)
            #expect(newest.map(\.detail) == ["d3", "d2"] && newest.last?.mrn == nil)
            let order = newOrder("P-r")
            #expect(try await l.commit(JournalWrite(order: .insert(order))) == .committed)
            var settled = order
            settled.state = .succeeded
            settled.paidAmount = "1.00"
            settled.settledSource = .callback
            settled.settledAt = 9
            settled.answer = RecordedAnswer(status: 202, body: "{}")
            settled.verdict = .accepted
            settled.version = 2
            let receipt = CallbackReceipt(kind: .payout, mrn: "P-r", outcome: .succeeded, duplicate: false, body: "amount=1", sourceAddress: "203.0.113.9", at: 9)
            #expect(try await l.commit(JournalWrite(order: .update(settled, expectedVersion: 1), receipt: receipt, durable: true)) == .committed)
            #expect(try await l.journaled(.payout, "P-r") == .order(settled), "every column survives the round trip")
            var pruned = settled
            pruned.closedAt = 10
            pruned.version = 3
            #expect(try await l.commit(JournalWrite(order: .update(pruned, expectedVersion: 2))) == .committed)
            #expect(try await l.commit(JournalWrite(order: .delete(kind: .payout, mrn: "P-r", expectedVersion: 2))) == .conflict(.order(pruned)),
                    "a delete based on an old version is refused")
        }
    }
}
