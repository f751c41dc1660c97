/// A transfer that did not produce an HTTP response.
///
/// A struct over a private enum, so that new kinds can be added without breaking anyone's `switch`.
/// Compare with the static members: `error.kind == .timedOut`.
public struct CurlError: Error, Sendable, Hashable, CustomStringConvertible {
    /// What went wrong, in broad terms.
    public struct Kind: Sendable, Hashable, CustomStringConvertible {
        private enum Base: String, Sendable, Hashable {
            case invalidRequest, couldNotResolve, connectFailed, timedOut, cancelled, tls
            case connectionLost, protocolError, responseTooLarge, shutdown, other
        }
        private let base: Base
        private init(_ base: Base) { self.base = base }

        /// The request could not be built (bad URL, unsupported scheme, bad option).
        public static let invalidRequest = Kind(.invalidRequest)
        /// The host name (or proxy) did not resolve.
        public static let couldNotResolve = Kind(.couldNotResolve)
        /// The TCP connection could not be made (refused, unreachable).
        public static let connectFailed = Kind(.connectFailed)
        /// The total or connect timeout passed.
        public static let timedOut = Kind(.timedOut)
        /// The calling task was cancelled; the transfer was aborted.
        public static let cancelled = Kind(.cancelled)
        /// TLS handshake or certificate verification failed.
        public static let tls = Kind(.tls)
        /// The connection broke while sending or receiving (reset, closed early, empty reply).
        public static let connectionLost = Kind(.connectionLost)
        /// The peer's answer broke HTTP.
        public static let protocolError = Kind(.protocolError)
        /// The response body exceeded `Configuration.maxResponseBodySize`.
        public static let responseTooLarge = Kind(.responseTooLarge)
        /// The client is shutting down or has shut down and takes no new requests.
        public static let shutdown = Kind(.shutdown)
        /// Anything else libcurl reported; see `message` and `curlCode`.
        public static let other = Kind(.other)

        public var description: String { base.rawValue }
    }

    public let kind: Kind
    /// libcurl's own words (its error buffer, or `curl_easy_strerror`), or ours.
    public let message: String
    /// libcurl's CURLcode, 0 when the error did not come from libcurl.
    public let curlCode: Int
    /// True when at least part of the request reached the wire, so the server may have acted on it.
    /// A payment create that fails with this set has an unknown outcome.
    public let requestSent: Bool

    public init(kind: Kind, message: String, curlCode: Int = 0, requestSent: Bool = false) {
        self.kind = kind
        self.message = message
        self.curlCode = curlCode
        self.requestSent = requestSent
    }

    public var description: String {
        "CurlError(\(kind): \(message)\(curlCode != 0 ? ", curl code \(curlCode)" : "")\(requestSent ? ", request sent" : ""))"
    }

    /// The calling task was cancelled. `requestSent` must say whether the aborted transfer had put any of
    /// the request on the wire (`EasyHandle.requestSent`); leave it out only for a request that never
    /// reached libcurl.
    static func cancelled(requestSent: Bool = false) -> CurlError {
        CurlError(kind: .cancelled, message: "the request was cancelled", requestSent: requestSent)
    }

    /// The client stopped: refused or queued requests, or (on a hard stop) aborted transfers, with
    /// `requestSent` as for `cancelled(requestSent:)`.
    static func shutdown(requestSent: Bool = false) -> CurlError {
        CurlError(kind: .shutdown, message: "the HTTP client is shut down", requestSent: requestSent)
    }
}
