import ConfigurationValues
import Ledger
import Orders
import PostgresNIO

/// Where the PostgreSQL ledger connects and how: read from a libpq-style URL,
/// `postgres://user[:password]@host[:port][/database][?sslmode=...&sslrootcert=...]` (also `postgresql://`).
///
/// The password never prints: `description`, `dump` and reflection show the URL without it (and without the
/// user and options, as `URLText.redacted` does for every URL the sidecar logs).
public struct PostgresSettings: Sendable, Hashable, CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
    /// libpq's `sslmode`, with libpq's meaning.
    public enum SSLMode: String, Sendable, Hashable, CaseIterable {
        /// Plain TCP.
        case disable
        /// Encrypt if the server offers it; verify nothing (libpq tries plain first; postgres-nio asks for TLS first).
        case allow
        /// Encrypt if the server offers it; verify nothing. libpq's default, and so ours.
        case prefer
        /// Encrypt, or fail; verify nothing (the chain, without the host name, when `sslrootcert` is given).
        case require
        /// Encrypt and verify the server's certificate chain, not its host name.
        case verifyCA = "verify-ca"
        /// Encrypt and verify the chain and that the certificate names the host.
        case verifyFull = "verify-full"
    }

    public var host: String
    public var port: Int
    public var username: String
    public var database: String
    public var sslMode: SSLMode
    /// A PEM file of the certificate authorities to trust (`sslrootcert=`); nil: the system's.
    public var sslRootCert: String?
    /// Connections the pool opens at most (PAYSIDECAR_DATABASE_POOL_SIZE); two at least, since `followOutbox`
    /// holds one for LISTEN.
    public var poolSize: Int
    /// How long one ledger call may take, waiting for a connection included (PAYSIDECAR_DATABASE_TIMEOUT). Also
    /// the server's `statement_timeout`, so a statement stuck behind a lock stops holding its connection too.
    public var timeout: Duration
    /// Shown in `pg_stat_activity`, so an operator can tell the sidecar's sessions apart.
    public var applicationName: String
    private var password: String?

    /// Reads `url`; `password`, if given, is used when the URL holds none (PAYSIDECAR_DATABASE_PASSWORD[_FILE]).
    /// Errors name what is wrong and show the URL without its credentials and options.
    public init(url: String, password: String? = nil, poolSize: Int = 10, timeout: Duration = .seconds(5)) throws(LedgerError) {
        let shown = URLText.redacted(url)
        var rest = Substring(url)
        if rest.hasPrefix("postgres://") {
            rest = rest.dropFirst("postgres://".count)
        } else if rest.hasPrefix("postgresql://") {
            rest = rest.dropFirst("postgresql://".count)
        } else {
            throw LedgerError("\(shown) is not a postgres:// or postgresql:// URL")
        }
        if let hash = rest.firstIndex(of: "#") { rest = rest[..<hash] }
        var query: Substring = ""
        if let question = rest.firstIndex(of: "?") {
            query = rest[rest.index(after: question)...]
            rest = rest[..<question]
        }
        var authority = rest
        var path: Substring = ""
        if let slash = rest.firstIndex(of: "/") {
            authority = rest[..<slash]
            path = rest[rest.index(after: slash)...]
        }
        var userinfo: Substring?
        if let at = authority.lastIndex(of: "@") {
            userinfo = authority[..<at]
            authority = authority[authority.index(after: at)...]
        }
        var urlPassword: String?
        if let userinfo {
            if let colon = userinfo.firstIndex(of: ":") {
                self.username = try Self.decoded(userinfo[..<colon], "the user name", shown)
                urlPassword = try Self.decoded(userinfo[userinfo.index(after: colon)...], "the password", shown)
            } else {
                self.username = try Self.decoded(userinfo, "the user name", shown)
            }
        } else {
            self.username = ""
        }
        guard !username.isEmpty else { throw LedgerError("\(shown) names no user (postgres://user:password@host:5432/database)") }
        // The host: a name, an IPv4 address, or an IPv6 address in brackets; then an optional port.
        var hostPart = authority
        var portText: Substring?
        if authority.hasPrefix("[") {
            guard let close = authority.firstIndex(of: "]") else { throw LedgerError("\(shown): an IPv6 host needs its closing ]") }
            hostPart = authority[authority.index(after: authority.startIndex)..<close]
            let after = authority[authority.index(after: close)...]
            if !after.isEmpty {
                guard after.hasPrefix(":") else { throw LedgerError("\(shown): unexpected text after the host") }
                portText = after.dropFirst()
            }
        } else if let colon = authority.lastIndex(of: ":") {
            hostPart = authority[..<colon]
            portText = authority[authority.index(after: colon)...]
        }
        self.host = try Self.decoded(hostPart, "the host", shown)
        guard !host.isEmpty else {
            throw LedgerError("\(shown) names no host (Unix sockets are not supported: use host:port)")
        }
        if let portText {
            guard let port = Int(portText), (1...65535).contains(port) else { throw LedgerError("\(shown): the port is not a number from 1 to 65535") }
            self.port = port
        } else {
            self.port = 5432
        }
        let database = try Self.decoded(path, "the database name", shown)
        guard !database.contains("/") else { throw LedgerError("\(shown): the path must be one database name") }
        // libpq's default: a database named after the user.
        self.database = database.isEmpty ? username : database

        var sslMode = SSLMode.prefer
        var sslRootCert: String?
        for pair in query.split(separator: "&", omittingEmptySubsequences: true) {
            let key: Substring
            let value: String
            if let eq = pair.firstIndex(of: "=") {
                key = pair[..<eq]
                value = try Self.decoded(pair[pair.index(after: eq)...], "an option", shown)
            } else {
                key = pair
                value = ""
            }
            switch key {
            case "sslmode":
                guard let mode = SSLMode(rawValue: value) else {
                    throw LedgerError("\(shown): sslmode '\(value)' is not one of \(SSLMode.allCases.map(\.rawValue).joined(separator: ", "))")
                }
                sslMode = mode
            case "sslrootcert":
                guard !value.isEmpty else { throw LedgerError("\(shown): sslrootcert names no file") }
                sslRootCert = value
            default:
                throw LedgerError("\(shown): the option '\(key)' is not supported (sslmode and sslrootcert are)")
            }
        }
        self.sslMode = sslMode
        self.sslRootCert = sslRootCert

        if urlPassword != nil, password != nil {
            throw LedgerError("the URL holds a password and PAYSIDECAR_DATABASE_PASSWORD is set too: give it once")
        }
        self.password = urlPassword ?? password
        self.poolSize = poolSize
        self.timeout = timeout
        self.applicationName = "pay-sidecar"
    }

    /// `postgres://host:port/database`: what logs and errors show.
    public var description: String {
        let shownHost = host.contains(":") ? "[\(host)]" : host
        return "postgres://\(shownHost):\(port)/\(database)"
    }

    public var debugDescription: String { description }
    public var customMirror: Mirror { Mirror(self, children: ["url": description], displayStyle: .struct) }

    /// Percent-decoded UTF-8 text.
    private static func decoded(_ text: Substring, _ what: String, _ shown: String) throws(LedgerError) -> String {
        var bytes: [UInt8] = []
        var utf8 = Array(text.utf8)[...]
        while let byte = utf8.popFirst() {
            if byte == UInt8(ascii: "%") {
                guard utf8.count >= 2, let high = hexValue(utf8.removeFirst()), let low = hexValue(utf8.removeFirst()) else {
                    throw LedgerError("\(shown): \(what) holds a malformed %-escape")
                }
                bytes.append(high << 4 | low)
            } else {
                bytes.append(byte)
            }
        }
        guard let string = String(validating: bytes, as: UTF8.self) else { throw LedgerError("\(shown): \(what) is not UTF-8") }
        return string
    }

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return byte - UInt8(ascii: "A") + 10
        default: return nil
        }
    }

    // MARK: postgres-nio's configurations

    /// libpq's `sslmode` as NIOSSL's settings: encryption without verification below `verify-ca`, as libpq does.
    func tlsConfiguration() -> TLSConfiguration? {
        guard sslMode != .disable else { return nil }
        var tls = TLSConfiguration.makeClientConfiguration()
        if let sslRootCert { tls.trustRoots = .file(sslRootCert) }
        switch sslMode {
        case .disable, .allow, .prefer: tls.certificateVerification = .none
        case .require: tls.certificateVerification = sslRootCert == nil ? .none : .noHostnameVerification
        case .verifyCA: tls.certificateVerification = .noHostnameVerification
        case .verifyFull: tls.certificateVerification = .fullVerification
        }
        return tls
    }

    /// What every session is started with: its name, and server-side bounds matching the client's deadline.
    var startupParameters: [(String, String)] {
        let millis = max(1, milliseconds(timeout))
        return [
            ("application_name", applicationName),
            // A statement (a lock wait included) that outlives the caller's deadline is stopped by the server too.
            ("statement_timeout", String(millis)),
            // A transaction its client abandoned mid-way (the process died, the network went) releases its locks.
            ("idle_in_transaction_session_timeout", String(max(10_000, 4 * millis))),
        ]
    }

    /// The pool's configuration.
    func clientConfiguration() -> PostgresClient.Configuration {
        let tls: PostgresClient.Configuration.TLS
        switch (sslMode, tlsConfiguration()) {
        case (.require, let configuration?), (.verifyCA, let configuration?), (.verifyFull, let configuration?): tls = .require(configuration)
        case (_, let configuration?): tls = .prefer(configuration)
        case (_, nil): tls = .disable
        }
        var configuration = PostgresClient.Configuration(host: host, port: port, username: username, password: password, database: database, tls: tls)
        configuration.options.maximumConnections = max(2, poolSize)
        configuration.options.minimumConnections = 0
        configuration.options.connectTimeout = min(timeout, .seconds(10))
        configuration.options.additionalStartupParameters = startupParameters
        return configuration
    }

    /// One connection's configuration (start-up checks, migrations, tests). Throws when the TLS settings are
    /// unusable (e.g. `sslrootcert` names no readable PEM file).
    public func connectionConfiguration() throws(LedgerError) -> PostgresConnection.Configuration {
        let tls: PostgresConnection.Configuration.TLS
        do {
            switch (sslMode, tlsConfiguration()) {
            case (.require, let configuration?), (.verifyCA, let configuration?), (.verifyFull, let configuration?):
                tls = .require(try NIOSSLContext(configuration: configuration))
            case (_, let configuration?): tls = .prefer(try NIOSSLContext(configuration: configuration))
            case (_, nil): tls = .disable
            }
        } catch {
            throw LedgerError("\(description): the TLS settings cannot be used (sslrootcert \(sslRootCert ?? "-")): \(error)")
        }
        var configuration = PostgresConnection.Configuration(host: host, port: port, username: username, password: password, database: database, tls: tls)
        configuration.options.connectTimeout = .milliseconds(max(1, milliseconds(min(timeout, .seconds(10)))))
        configuration.options.additionalStartupParameters = startupParameters
        return configuration
    }

    /// The same server and credentials, another database (tests make a fresh one per test).
    public func with(database: String) -> PostgresSettings {
        var copy = self
        copy.database = database
        return copy
    }
}
