import Ledger
import Logging
import Orders
import PostgresNIO
import ServiceLifecycle

/// The ledger on PostgreSQL, for several sidecar replicas sharing one database (contract section 10).
///
/// The same semantics as `SQLiteLedger`, method by method; what differs is how they hold with other writers
/// alive at the same time:
/// - `commit` is one transaction; an order change is checked against its version (`UPDATE ... WHERE version = $`),
///   an insert refused when the (kind, mrn) is journaled or tombstoned, so two replicas never both act on one state.
/// - `claimDueOrders` and `claimDueEvents` take rows with `FOR UPDATE SKIP LOCKED` and a lease: two replicas never
///   claim the same row, and a dead replica's claims come due again when their lease ends. Outbox claims carry this
///   instance's `claimOwner`; `renewEventClaims` extends them while attempts run, and `finishAttempt` locks the row
///   to settle an attempt against the claim it finds (`AttemptSettlement`).
/// - Orders a dead replica left `sending` are NOT released when a ledger opens (SQLite does so because its lock file
///   proves the previous process gone; here other replicas may be sending right now): the reconciler takes them
///   up when their `nextQueryAt` (the send's deadline) passes.
/// - Commits that queue events send `NOTIFY paysidecar_outbox`, which `followOutbox` turns into a wake-up.
///
/// Every commit is durable when it returns: PostgreSQL's default `synchronous_commit = on` waits for the WAL to
/// reach the server's disk (and its synchronous standbys, if any), so `JournalWrite.durable` needs nothing more.
///
/// Every call has a deadline (`PostgresSettings.timeout`): while the database is unreachable, calls fail after it
/// (the sidecar answers 503, `/readyz` says not ready) instead of waiting for the pool's circuit breaker (about
/// 65 s). The pool (`PostgresClient`) runs as a `Service`: `run()` this ledger in the server's service group,
/// before the services that use it, so that it stops after them.
public final class PostgresLedger: Ledger, Service {
    let client: PostgresClient
    public let settings: PostgresSettings
    /// The sidecar's logger, for what this ledger has to say (schema migrated, notifications lost).
    let logger: Logger
    /// What postgres-nio logs per query (the SQL, at debug and trace) goes here: notice and above only.
    let queryLogger: Logger
    /// The schema versions this instance applied when it opened (empty when another replica had done so).
    public let appliedMigrations: [Int]
    public let claimOwner = newClaimOwner()

    /// The channel that commits queuing events notify.
    public static let outboxChannel = "paysidecar_outbox"
    /// Keeps at most this many refused callbacks, as the SQLite ledger does.
    public static let rejectionRetention = 10_000
    /// `isHealthy` waits at most this long (or the settings' timeout, if shorter).
    static let healthDeadline: Duration = .seconds(2)
    /// How long opening may wait for the schema: another replica's migration holding the lock, or a long one of
    /// our own. Reaching the server is bounded by the settings' timeout, as every call.
    public static let migrationTimeout: Duration = .seconds(120)

    init(client: PostgresClient, settings: PostgresSettings, logger: Logger, appliedMigrations: [Int]) {
        self.client = client
        self.settings = settings
        self.logger = logger
        self.queryLogger = Self.quieted(logger)
        self.appliedMigrations = appliedMigrations
    }

    /// Connects once (failing within `settings.timeout` when the database is unreachable, with an error that
    /// names the server, never the password), migrates the schema under a transaction-scoped advisory lock (so
    /// replicas starting together migrate once: the others wait, up to `migrationTimeout`), and returns the ledger
    /// with its pool ready to `run()`.
    public static func open(_ settings: PostgresSettings, logger: Logger) async throws(LedgerError) -> PostgresLedger {
        let configuration = try settings.connectionConfiguration()
        let backgroundLogger = Self.quieted(logger)
        let connection: PostgresConnection
        do {
            connection = try await withDeadline(settings.timeout) {
                let connection = try await PostgresConnection.connect(configuration: configuration, id: 0, logger: backgroundLogger)
                do {
                    _ = try await connection.query("SELECT 1", logger: backgroundLogger).collect()
                } catch {
                    try? await connection.close()
                    throw error
                }
                return connection
            }
        } catch {
            throw LedgerError("cannot reach PostgreSQL at \(settings): \(Self.reason(error))")
        }
        let applied: [Int]
        do {
            applied = try await withDeadline(migrationTimeout) {
                try await Self.migrate(connection, logger: backgroundLogger)
            }
            try? await connection.close()
        } catch {
            try? await connection.close()
            throw LedgerError("cannot migrate the schema of PostgreSQL at \(settings): \(Self.reason(error))")
        }
        if !applied.isEmpty {
            logger.notice("database schema migrated", metadata: ["database": "\(settings)", "versions": "\(applied)"])
        }
        let client = PostgresClient(configuration: settings.clientConfiguration(), backgroundLogger: backgroundLogger)
        return PostgresLedger(client: client, settings: settings, logger: logger, appliedMigrations: applied)
    }

    /// `logger` at notice or above: postgres-nio logs every query (its SQL) at debug and trace, and the sidecar's
    /// own lines already say what matters.
    static func quieted(_ logger: Logger) -> Logger {
        var quiet = logger
        quiet.logLevel = max(logger.logLevel, .notice)
        return quiet
    }

    /// Runs the connection pool until cancelled or, in a service group, until graceful shutdown.
    public func run() async throws {
        await client.run()
    }

    public func isHealthy() async -> Bool {
        do {
            let rows = try await withDeadline(min(settings.timeout, Self.healthDeadline)) { [client] in
                try await client.query("SELECT 1::int8").collect()
            }
            return try rows.first?.decode(Int64.self) == 1
        } catch {
            return false
        }
    }

    /// Nothing to do: the server checkpoints its own write-ahead log.
    public func checkpoint() async throws -> (logPages: Int, checkpointedPages: Int) {
        (0, 0)
    }

    // MARK: Running statements

    /// One statement outside a transaction (PostgreSQL runs it atomically), its rows collected (an error
    /// after the first row would otherwise be lost), under the deadline.
    func rows(_ what: String, _ query: PostgresQuery) async throws -> [PostgresRow] {
        try await guarded(what) { [client] in try await client.query(query).collect() }
    }

    /// `body` in one transaction under the deadline. A serialization failure or deadlock (the transaction was
    /// rolled back whole) is tried again, twice at most. `body` must never swallow a statement's error: a
    /// transaction with a failed statement rolls back at COMMIT without saying so.
    func transaction<T: Sendable>(_ what: String, _ body: @escaping @Sendable (PostgresConnection) async throws -> T) async throws -> T {
        try await guarded(what) { [client, queryLogger] in
            var attempt = 1
            while true {
                do {
                    return try await client.withTransaction(logger: queryLogger) { connection in try await body(connection) }
                } catch let error where attempt < 3 && Self.isTransient(error) {
                    attempt += 1
                }
            }
        }
    }

    /// `body` on one pooled connection (outside a transaction) under the deadline.
    func guardedOnConnection<T: Sendable>(_ what: String, _ body: @escaping @Sendable (PostgresConnection, Logger) async throws -> T) async throws -> T {
        try await guarded(what) { [client, queryLogger] in
            try await client.withConnection { connection in try await body(connection, queryLogger) }
        }
    }

    /// Runs `operation` under the deadline, its failure as a `LedgerError` naming the server and the step.
    private func guarded<T: Sendable>(_ what: String, _ operation: @escaping @Sendable () async throws -> T) async throws -> T {
        do {
            return try await withDeadline(settings.timeout, operation)
        } catch let error as CancellationError {
            throw error
        } catch {
            throw LedgerError("PostgreSQL at \(settings): \(what) failed: \(Self.reason(error))")
        }
    }

    /// The SQLSTATE of a server error, looking inside a transaction's error.
    static func sqlState(_ error: any Error) -> String? {
        if let error = error as? PSQLError { return error.serverInfo?[.sqlState] }
        if let error = error as? PostgresTransactionError {
            for inner in [error.beginError, error.closureError, error.commitError] {
                if let inner, let state = sqlState(inner) { return state }
            }
        }
        return nil
    }

    /// Serialization failure or deadlock: PostgreSQL rolled the transaction back, and it may simply be tried again.
    static func isTransient(_ error: any Error) -> Bool {
        sqlState(error) == "40001" || sqlState(error) == "40P01"
    }

    /// What went wrong, in words that name no secret: postgres-nio's own descriptions are deliberately vague, so
    /// this reads the server's message and SQLSTATE, or the connection's error.
    static func reason(_ error: any Error) -> String {
        switch error {
        case let error as LedgerError:
            return error.message
        case let error as PostgresTransactionError:
            if let inner = error.closureError ?? error.commitError ?? error.beginError ?? error.rollbackError { return reason(inner) }
            return "the transaction failed"
        case let error as PSQLError:
            if let info = error.serverInfo {
                return "\(info[.message] ?? "server error") (SQLSTATE \(info[.sqlState] ?? "?"))"
            }
            if let underlying = error.underlying { return "\(error.code): \(underlying)" }
            return "\(error.code)"
        case is CancellationError:
            return "cancelled"
        default:
            return "\(error)"
        }
    }
}

/// A row read by column name, failing (never trapping, as postgres-nio's subscript does) on a column it lacks.
struct Columns {
    let row: PostgresRandomAccessRow

    init(_ row: PostgresRow) {
        self.row = row.makeRandomAccess()
    }

    func callAsFunction<T: PostgresDecodable>(_ name: String, as type: T.Type = T.self) throws -> T {
        guard row.contains(name) else { throw LedgerError("a row has no column \(name)") }
        return try row[name].decode(T.self)
    }
}
