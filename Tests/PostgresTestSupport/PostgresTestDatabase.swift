import Foundation
import Ledger
import LedgerPostgres
import Logging
import PostgresNIO

/// The PostgreSQL server the tests may use: `PAYSIDECAR_TEST_POSTGRES_URL`, a superuser's URL
/// (`eval "$(scripts/pg-test-cluster.sh start)"` sets it). Each test gets a database of its own, made fresh and
/// dropped after, so tests run in parallel without seeing each other's rows.
public enum PostgresTestDatabase {
    public static let variable = "PAYSIDECAR_TEST_POSTGRES_URL"

    /// The server's URL, or nil when the PostgreSQL tests are not to run.
    public static var adminURL: String? {
        guard let url = ProcessInfo.processInfo.environment[variable], !url.isEmpty else { return nil }
        return url
    }

    public static var isConfigured: Bool { adminURL != nil }

    /// Logs nothing: a test reads what it checks.
    public static let quietLogger = Logger(label: "postgres-test", factory: { _ in SwiftLogNoOpLogHandler() })

    /// Creates a database with a random name, runs `body` with its URL, and drops it (closing whatever
    /// connections are left), also when `body` throws.
    public static func withFreshDatabase<R>(_ body: (String) async throws -> R) async throws -> R {
        guard let adminURL else { throw LedgerError("\(variable) is not set") }
        let name = "paysidecar_test_" + UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased().prefix(16)
        try await administer(adminURL, "CREATE DATABASE \(name)")
        do {
            let result = try await body(url(adminURL, database: name))
            try await administer(adminURL, "DROP DATABASE IF EXISTS \(name) WITH (FORCE)")
            return result
        } catch {
            _ = try? await administer(adminURL, "DROP DATABASE IF EXISTS \(name) WITH (FORCE)")
            throw error
        }
    }

    /// Drops the database `url` names (closing its connections): an outage, as the sidecar sees it.
    public static func drop(_ url: String) async throws {
        guard let adminURL else { throw LedgerError("\(variable) is not set") }
        let name = try PostgresSettings(url: url).database
        guard name.hasPrefix("paysidecar_test_") else { throw LedgerError("\(name) is not a test database") }
        try await administer(adminURL, "DROP DATABASE IF EXISTS \(name) WITH (FORCE)")
    }

    /// `url` naming another database (its path replaced, its options kept).
    public static func url(_ url: String, database: String) -> String {
        guard let scheme = url.range(of: "://") else { return url }
        let afterScheme = url[scheme.upperBound...]
        let authorityEnd = afterScheme.firstIndex { $0 == "/" || $0 == "?" } ?? afterScheme.endIndex
        let query = afterScheme[authorityEnd...].firstIndex(of: "?").map { String(afterScheme[$0...]) } ?? ""
        return String(url[..<authorityEnd]) + "/" + database + query
    }

    /// The first column of the first row of `sql` as a number (e.g. a `COUNT(*)`), on a connection of its own.
    public static func integer(_ url: String, _ sql: String) async throws -> Int {
        let rows = try await administer(url, sql)
        guard let row = rows.first else { throw LedgerError("\(sql): no row") }
        return try row.decode(Int.self)
    }

    /// Runs one statement (no binds: CREATE and DROP DATABASE take none) on a connection of its own.
    @discardableResult
    static func administer(_ url: String, _ sql: String) async throws -> [PostgresRow] {
        // No 5 s statement_timeout here: with every test of a run creating its database at once, a CREATE DATABASE
        // may wait its turn for a while.
        let configuration = try PostgresSettings(url: url, timeout: .seconds(300)).connectionConfiguration()
        let connection: PostgresConnection
        do {
            connection = try await PostgresConnection.connect(configuration: configuration, id: 1, logger: quietLogger)
        } catch {
            throw LedgerError("connecting to run \(sql): \(String(reflecting: error))")
        }
        do {
            let rows = try await connection.query(PostgresQuery(unsafeSQL: sql), logger: quietLogger).collect()
            try await connection.close()
            return rows
        } catch {
            try? await connection.close()
            // postgres-nio's own description hides the server's message; a test's reader wants it.
            throw LedgerError("\(sql): \(String(reflecting: error))")
        }
    }

    /// Opens a `PostgresLedger` on a fresh database, runs its pool while `body` runs, then stops it and drops the
    /// database.
    public static func withLedger<R>(poolSize: Int = 4, timeout: Duration = .seconds(30), _ body: (PostgresLedger) async throws -> R) async throws -> R {
        try await withFreshDatabase { url in
            let ledger = try await PostgresLedger.open(try PostgresSettings(url: url, poolSize: poolSize, timeout: timeout), logger: quietLogger)
            return try await running(ledger) { try await body(ledger) }
        }
    }

    /// Runs `ledger`'s pool while `body` runs.
    public static func running<R>(_ ledger: PostgresLedger, _ body: () async throws -> R) async throws -> R {
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await ledger.run() }
            defer { group.cancelAll() }
            return try await body()
        }
    }
}
