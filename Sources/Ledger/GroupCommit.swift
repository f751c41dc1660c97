import GRDB
import Synchronization

/// Group commit: writes that arrive while a commit is under way wait for it, then go to the disk together in
/// one transaction and one sync, each in a savepoint of its own (one failing rolls back only itself).
///
/// Every caller is answered only after the commit that holds its write returned, so a callback's `success`
/// still follows its own durable commit; under load many of them share the cost of one `fsync`. A lone write
/// goes at once: there is no waiting to fill a batch.
///
/// A write is `durable` (its commit waits for the disk: `synchronous = FULL`) or not (`NORMAL`: in WAL mode
/// safe against a crash of the process, not against a power loss). A batch holding one durable write is
/// committed durably, and a durable commit also makes every earlier commit durable. A write that is not
/// durable and finds the writer idle is committed on the caller's thread (see `writeInlineIfIdle`).
final class GroupCommit: Sendable {
    private let pool: DatabasePool
    private let maxBatch: Int
    private struct State {
        var queue: [any GroupCommitJob] = []
        var writing = false
        /// The connection's current `synchronous` setting (only the draining task changes it).
        var synchronousFull: Bool?
    }
    private let state = Mutex(State())
    private let commitCount = Atomic<Int>(0)

    /// How many transactions were committed (fewer than the writes when they were grouped).
    var commits: Int { commitCount.load(ordering: .relaxed) }

    init(pool: DatabasePool, maxBatch: Int = 256) {
        self.pool = pool
        self.maxBatch = maxBatch
    }

    func write<T: Sendable>(durable: Bool, _ work: @escaping @Sendable (Database) throws -> T) async throws -> T {
        if !durable, let result = writeInlineIfIdle(work) { return try result.get() }
        return try await withCheckedThrowingContinuation { continuation in
            let job = Job(durable: durable, work: work, continuation: continuation)
            let startWriter = state.withLock { state -> Bool in
                state.queue.append(job)
                if state.writing { return false }
                state.writing = true
                return true
            }
            if startWriter { drain() }
        }
    }

    /// A write that is not `durable` and finds the writer idle commits at once on the caller's thread (GRDB's
    /// synchronous write runs on the calling thread when its queue is free): no hand-off to the writer queue
    /// and back, each a thread wake-up that costs more than the commit itself on a small machine. A
    /// `NORMAL` commit in WAL mode is an append to the log, short enough to run on a concurrency thread;
    /// durable commits wait for the disk and always go through the writer queue. Writes that arrive
    /// meanwhile are queued and committed together by the writer queue afterwards. Nil when the writer is busy.
    private func writeInlineIfIdle<T>(_ work: (Database) throws -> T) -> Result<T, any Error>? {
        let current = state.withLock { state -> Bool?? in
            if state.writing { return .none }
            state.writing = true
            return .some(state.synchronousFull)
        }
        guard let current else { return nil }
        let result = Result { () throws -> T in
            try pool.writeWithoutTransaction { db -> T in
                var value: T?
                try commit(db, durable: false, current: current) { value = try work(db) }
                return value!
            }
        }
        let more = state.withLock { state -> Bool in
            if state.queue.isEmpty {
                state.writing = false
                return false
            }
            return true
        }
        if more { drain() }
        return result
    }

    /// One transaction on the writer's connection, its `synchronous` setting changed first when it differs
    /// from `current` (the setting as last known; only the holder of `writing` changes it).
    private func commit(_ db: Database, durable: Bool, current: Bool?, _ body: () throws -> Void) throws {
        if current != durable {
            try db.execute(sql: durable ? "PRAGMA synchronous = FULL" : "PRAGMA synchronous = NORMAL")
            state.withLock { $0.synchronousFull = durable }
        }
        try db.inTransaction {
            try body()
            return .commit
        }
        commitCount.add(1, ordering: .relaxed)
    }

    /// Commits batches until the queue is empty, on the database's writer itself (no task hop per batch;
    /// callers are resumed from there once their commit returned).
    private func drain() {
        pool.asyncWriteWithoutTransaction { db in
            while true {
                let (jobs, current) = self.state.withLock { state -> ([any GroupCommitJob], Bool?) in
                    guard !state.queue.isEmpty else {
                        state.writing = false
                        return ([], nil)
                    }
                    let batch = Array(state.queue.prefix(self.maxBatch))
                    state.queue.removeFirst(batch.count)
                    return (batch, state.synchronousFull)
                }
                if jobs.isEmpty { return }
                do {
                    try self.commit(db, durable: jobs.contains { $0.durable }, current: current) {
                        for job in jobs { job.run(db) }
                    }
                    for job in jobs { job.finish(commitError: nil) }
                } catch {
                    for job in jobs { job.finish(commitError: error) }
                }
            }
        }
    }

    private final class Job<T: Sendable>: GroupCommitJob, @unchecked Sendable {
        // @unchecked: `result` is written in `run` on the database's writer and read in `finish` after the
        // commit returned, by the one task that drains the queue.
        let durable: Bool
        let work: @Sendable (Database) throws -> T
        let continuation: CheckedContinuation<T, any Error>
        var result: Result<T, any Error>?

        init(durable: Bool, work: @escaping @Sendable (Database) throws -> T, continuation: CheckedContinuation<T, any Error>) {
            self.durable = durable
            self.work = work
            self.continuation = continuation
        }

        func run(_ db: Database) {
            do {
                var value: T?
                try db.inSavepoint {
                    value = try work(db)
                    return .commit
                }
                result = .success(value!)
            } catch {
                result = .failure(error)
            }
        }

        func finish(commitError: (any Error)?) {
            if let commitError {
                continuation.resume(throwing: commitError)
            } else {
                continuation.resume(with: result ?? .failure(LedgerError("a batched write did not run")))
            }
        }
    }
}

private protocol GroupCommitJob: AnyObject, Sendable {
    var durable: Bool { get }
    func run(_ db: Database)
    func finish(commitError: (any Error)?)
}
