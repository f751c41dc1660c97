import ArgumentParser
import ConfigurationValues
import Logging
import Sidecar

/// `pay-sidecar migrate-ledger --from sqlite://... --to postgres://...`: the one-shot move from one process on SQLite
/// to replicas on PostgreSQL (README: Moving from SQLite to PostgreSQL).
struct MigrateLedger: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "migrate-ledger",
        abstract: "Copy a stopped sidecar's SQLite ledger into an empty PostgreSQL database, once (moving to several replicas).",
        discussion: """
            Copies every journaled order (open ones and final ones still within the journal's retention), the \
            tombstones, every outbox event with its delivery attempts, callback receipts and refused callbacks, in one \
            transaction: a copy that fails leaves the target empty. Refuses (exit 2, one line) a source a sidecar still \
            uses, and a target that already holds a ledger. Prints what it copied; never a password.
            Steps: stop the sidecar; run this; start the replicas with PAYSIDECAR_DATABASE_URL set to the target.
            The password: in the URL, or (better: the process list shows the URL) PAYSIDECAR_DATABASE_PASSWORD_FILE \
            or --database-password-file.
            """
    )

    @Option(help: "The SQLite ledger to copy, e.g. sqlite:///var/lib/pay-sidecar/pay-sidecar.db (its sidecar stopped).")
    var from: String
    @Option(help: "The empty PostgreSQL database, e.g. postgres://pay@db.internal:5432/pay?sslmode=verify-full.")
    var to: String
    @Option(name: .customLong("database-password-file"), help: "Read the PostgreSQL password from this file [env: PAYSIDECAR_DATABASE_PASSWORD_FILE]")
    var databasePasswordFile: String?

    func run() async throws {
        var flags: [String: String] = [:]
        flags[Setting.databasePassword.fileVariable!] = databasePasswordFile
        var logger = Logger(label: "pay-sidecar")
        logger.logLevel = .error
        let lines: [String]
        do {
            lines = try await LedgerMigration.copy(from: from, to: to, flags: flags, environment: ProcessEnvironment.read(), logger: logger)
        } catch {
            throw failStartup("migrate-ledger: \(error.message)")
        }
        for line in lines { print(line) }
    }
}
