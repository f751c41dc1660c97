import Foundation
import GatewayProtocol
import Ledger
import Logging
import Orders
import ServiceLifecycle
import TestSupport
import Testing

@testable import Sidecar

@Suite("Journal checkpoints")
struct CheckpointTests {
    func order(_ n: Int) -> JournalWrite {
        var order = Order(kind: .payout, mrn: "P-ckpt-\(n)", amount: "1", state: .pending, request: String(repeating: "x", count: 400), fingerprint: "f", createdAt: 1)
        order.version = 1
        return JournalWrite(order: .insert(order))
    }

    func fileSize(_ path: String) throws -> Int {
        try FileManager.default.attributesOfItem(atPath: path)[.size] as? Int ?? 0
    }

    @Test("commits leave the log to the background: the database file grows only when the checkpointer runs")
    func background() async throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("ckpt-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let ledger = try SQLiteLedger(path: folder.appendingPathComponent("l.db").path)
        let empty = try fileSize(ledger.path)
        // Several thousand pages of log: past SQLite's default threshold of 1,000, at which a commit would
        // have copied the log itself.
        for n in 0..<1500 { _ = try await ledger.commit(order(n)) }
        #expect(try fileSize(ledger.path + "-wal") > 1000 * 4096, "the log holds the writes")
        #expect(try fileSize(ledger.path) == empty, "no commit copied the log into the database")

        let checkpointer = Checkpointer(ledger: ledger, interval: .milliseconds(50), logger: Logger(label: "test"))
        let group = ServiceGroup(services: [checkpointer], gracefulShutdownSignals: [], logger: Logger(label: "test"))
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            #expect(await eventually { ((try? fileSize(ledger.path)) ?? 0) > empty + 1500 * 400 }, "the checkpointer copied the rows in")
            await group.triggerGracefulShutdown()
            try await tasks.waitForAll()
        }
        let (log, copied) = try await ledger.checkpoint()
        #expect(log > 0 && copied == log, "all of the log is in the database: \(copied) of \(log) pages")
        #expect(try await ledger.journaled(.payout, "P-ckpt-1499") != .nothing)
    }
}
