#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

extension CurlClient {
    /// How the client connects. Defaults suit a sidecar calling one upstream.
    public struct Configuration: Sendable {
        /// Total time for one request when the request sets none.
        public var timeout: Duration = .seconds(30)
        /// Time to establish a connection when the request sets none.
        public var connectTimeout: Duration = .seconds(10)
        /// Open connections per host (CURLMOPT_MAX_HOST_CONNECTIONS); more requests wait for a free one.
        /// 0 means no limit.
        public var maxConnectionsPerHost: Int = 64
        /// Idle connections kept for reuse (CURLMOPT_MAXCONNECTS).
        public var maxCachedConnections: Int = 64
        public var httpVersion: HTTPVersionPreference = .automatic
        public var proxy: ProxyConfiguration = .environment()
        public var tls: TLSConfiguration = .init()
        /// A larger response fails with `CurlError.Kind.responseTooLarge`.
        public var maxResponseBodySize: Int = 64 * 1024 * 1024
        /// Sent as `User-Agent` unless the request sets one.
        public var userAgent: String? = "pay-sidecar-curl"
        /// libcurl's own trace of every transfer on standard error (CURLOPT_VERBOSE), for debugging only:
        /// it prints request lines and headers.
        public var verbose: Bool = false

        public init() {}
    }

    /// Which HTTP version to ask libcurl for.
    public enum HTTPVersionPreference: Sendable, Hashable {
        /// HTTP/2 over TLS when the server offers it (ALPN), HTTP/1.1 otherwise.
        case automatic
        /// HTTP/1.1 only.
        case http1_1
        /// HTTP/2 without TLS, assuming the server speaks it (h2c prior knowledge).
        case http2PriorKnowledge
    }

    /// Which proxy, if any, requests go through.
    public enum ProxyConfiguration: Sendable, Hashable {
        /// Never use a proxy, whatever the environment says.
        case none
        /// Always this proxy, except hosts matching `noProxy` (libcurl's NO_PROXY syntax).
        case url(String, noProxy: String? = nil)
        /// `http_proxy`/`HTTP_PROXY` for http URLs, `https_proxy`/`HTTPS_PROXY` for https, `all_proxy` for
        /// either, and `no_proxy`/`NO_PROXY` for exceptions; read once, from `environment` or the process.
        case environment([String: String]? = nil)
    }

    /// TLS settings for https URLs.
    public struct TLSConfiguration: Sendable, Hashable {
        /// A PEM bundle of trusted CAs instead of the system's.
        public var caBundlePath: String?
        /// A PEM client certificate, for gateways that want mutual TLS.
        public var clientCertificatePath: String?
        public var clientKeyPath: String?
        public var clientKeyPassword: String?
        public var verifyPeer: Bool = true

        public init(caBundlePath: String? = nil, clientCertificatePath: String? = nil, clientKeyPath: String? = nil, clientKeyPassword: String? = nil, verifyPeer: Bool = true) {
            self.caBundlePath = caBundlePath
            self.clientCertificatePath = clientCertificatePath
            self.clientKeyPath = clientKeyPath
            self.clientKeyPassword = clientKeyPassword
            self.verifyPeer = verifyPeer
        }
    }
}

/// The proxy settings resolved once at start, so the driver thread never reads the environment.
struct ResolvedProxy: Sendable {
    var http: String?
    var https: String?
    var noProxy: String?
    /// When false, libcurl is told to use no proxy at all (an empty CURLOPT_PROXY).
    var enabled: Bool

    init(_ configuration: CurlClient.ProxyConfiguration) {
        switch configuration {
        case .none:
            self.enabled = false
        case .url(let url, let noProxy):
            self.enabled = true
            self.http = url
            self.https = url
            self.noProxy = noProxy
        case .environment(let given):
            let env = given ?? ResolvedProxy.processEnvironment()
            func first(_ names: String...) -> String? {
                for name in names { if let v = env[name], !v.isEmpty { return v } }
                return nil
            }
            let all = first("all_proxy", "ALL_PROXY")
            self.http = first("http_proxy", "HTTP_PROXY") ?? all
            self.https = first("https_proxy", "HTTPS_PROXY") ?? all
            self.noProxy = first("no_proxy", "NO_PROXY")
            self.enabled = true
        }
    }

    /// The proxy for `url`, or "" for none (an empty CURLOPT_PROXY also stops libcurl reading the environment).
    func proxy(for url: String) -> String {
        guard enabled else { return "" }
        let lower = url.prefix(8).lowercased()
        if lower.hasPrefix("https://") { return https ?? "" }
        return http ?? ""
    }

    static func processEnvironment() -> [String: String] {
        var result: [String: String] = [:]
        var pointer = environ
        while let entry = pointer.pointee {
            let pair = String(cString: entry)
            if let eq = pair.firstIndex(of: "=") {
                result[String(pair[..<eq])] = String(pair[pair.index(after: eq)...])
            }
            pointer += 1
        }
        return result
    }
}
