import ConfigurationValues
import Foundation
import Ledger
import LedgerPostgres
import Logging

/// `pay-sidecar migrate-ledger`: moves a sidecar from SQLite to PostgreSQL, once, while it is stopped.
///
/// It copies the whole ledger, not only what is open: every journaled order (the unsettled ones, which the
/// reconciler goes on following, and the final ones still within PAYSIDECAR_JOURNAL_RETENTION, which make a retried
/// create replay its answer and a repeated callback a duplicate instead of an `unknown_order`), the tombstones, every
/// outbox event with its delivery attempts (pending ones are delivered by the new replicas with their webhook-ids,
/// failed ones stay listed for redelivery, delivered ones keep the events API's history), callback receipts and
/// refused callbacks. Claims are dropped: their process is gone.
public enum LedgerMigration {
    /// A copy that could not be made: one line saying why, naming no password.
    public struct Failure: Error, Sendable, CustomStringConvertible {
        public let message: String
        public var description: String { message }
    }

    /// Copies the SQLite ledger `from` names into the empty PostgreSQL database `to` names and returns what to print.
    /// The password comes from `to` or PAYSIDECAR_DATABASE_PASSWORD[_FILE] (in `flags` or the environment), as for
    /// `serve`. Refuses a source a sidecar still uses (its lock file), a source that does not exist (opening would
    /// make an empty one) and a target that holds rows.
    public static func copy(from: String, to: String, flags: [String: String], environment: [String: String],
                            logger: Logger) async throws(Failure) -> [String] {
        let source: DatabaseLocation
        let target: DatabaseLocation
        do {
            source = try SidecarConfiguration.database(url: from, flags: flags, environment: environment)
        } catch {
            throw Failure(message: "--from: \(error.message)")
        }
        do {
            target = try SidecarConfiguration.database(url: to, flags: flags, environment: environment)
        } catch {
            throw Failure(message: error.setting == Setting.databaseURL.variable ? "--to: \(error.message)" : error.description)
        }
        guard case .sqlite(let path, _) = source else {
            throw Failure(message: "--from: \(source) is not a sqlite:// URL: migrate-ledger moves a SQLite ledger")
        }
        guard case .postgres(let settings) = target else {
            throw Failure(message: "--to: \(URLText.redacted(to)) is not a postgres:// URL: migrate-ledger moves a ledger to PostgreSQL")
        }
        guard FileManager.default.fileExists(atPath: path) else {
            throw Failure(message: "--from: there is no SQLite ledger at \(path)")
        }
        // Holding the lock file for the whole copy: no sidecar can start on the source meanwhile. Opening also brings
        // an older file to this version's schema and releases the claims its dead process left, as `serve` would.
        let ledger: SQLiteLedger
        do {
            ledger = try SQLiteLedger(path: path)
        } catch {
            let message = (error as? LedgerError)?.message ?? "\(error)"
            let inUse = message.contains("in use by another pay-sidecar process")
            throw Failure(message: "--from: \(message)\(inUse ? ": stop that sidecar first (its ledger is copied while nothing writes to it)" : "")")
        }
        let counts: LedgerCounts
        do {
            counts = try await PostgresLedger.importLedger(from: ledger, into: settings, logger: logger)
        } catch {
            throw Failure(message: "--to: \(error.message)")
        }
        return [
            "copied the ledger sqlite://\(path) into \(settings):",
            "  orders:            \(counts.orders) (\(counts.openOrders) not final: the reconciler follows them)",
            "  tombstones:        \(counts.tombstones)",
            "  events:            \(counts.events) (\(counts.pendingEvents) pending, \(counts.failedEvents) failed, \(counts.deliveredEvents) delivered), \(counts.attempts) delivery attempts",
            "  callback receipts: \(counts.receipts)",
            "  refused callbacks: \(counts.rejections)",
            "next: start the sidecars with PAYSIDECAR_DATABASE_URL=\(settings) (the password as before); keep \(path) as a backup and start no sidecar on it again",
        ]
    }
}
