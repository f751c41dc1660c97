/// One HTTP request for `CurlClient.execute(_:)`.
public struct CurlRequest: Sendable {
    public var method: String
    /// An absolute URL; libcurl parses it.
    public var url: String
    /// Header fields in order. `Content-Length` and `Host` are set by libcurl.
    public var headers: [(name: String, value: String)]
    public var body: [UInt8]?
    /// Overrides the client's default total timeout.
    public var timeout: Duration?
    /// Overrides the client's default connect timeout.
    public var connectTimeout: Duration?
    /// Whether sending the request twice is harmless. When a reused connection dies after the request went
    /// out, libcurl silently sends it again on a fresh connection; for a request that is not idempotent
    /// (a payment create) the client forbids that, and the call fails with `.connectionLost` and
    /// `requestSent` instead, so the caller can find out what happened. nil: from the method (POST and PATCH
    /// are not idempotent).
    public var isIdempotent: Bool?

    public init(
        method: String = "GET",
        url: String,
        headers: [(name: String, value: String)] = [],
        body: [UInt8]? = nil,
        timeout: Duration? = nil,
        connectTimeout: Duration? = nil,
        isIdempotent: Bool? = nil
    ) {
        self.method = method
        self.url = url
        self.headers = headers
        self.body = body
        self.timeout = timeout
        self.connectTimeout = connectTimeout
        self.isIdempotent = isIdempotent
    }

    /// The effective idempotency: the explicit setting, else true for every method but POST and PATCH.
    public var resendable: Bool {
        isIdempotent ?? !["POST", "PATCH"].contains(method.uppercased())
    }
}

/// The HTTP version libcurl spoke for a response.
public enum HTTPVersion: Sendable, Hashable, CustomStringConvertible {
    case http1_0, http1_1, http2, http3, unknown

    public var description: String {
        switch self {
        case .http1_0: return "HTTP/1.0"
        case .http1_1: return "HTTP/1.1"
        case .http2: return "HTTP/2"
        case .http3: return "HTTP/3"
        case .unknown: return "HTTP/?"
        }
    }
}

/// Response header fields, in order, looked up by name ignoring case.
public struct CurlHeaders: Sendable, Sequence {
    public private(set) var fields: [(name: String, value: String)] = []

    public init(_ fields: [(name: String, value: String)] = []) {
        self.fields = fields
    }

    mutating func append(name: String, value: String) {
        fields.append((name, value))
    }

    mutating func removeAll() { fields.removeAll() }

    /// The first value of `name`, or nil.
    public subscript(_ name: String) -> String? {
        fields.first { $0.name.lowercased() == name.lowercased() }?.value
    }

    /// Every value of `name`, in order.
    public func values(_ name: String) -> [String] {
        let wanted = name.lowercased()
        return fields.filter { $0.name.lowercased() == wanted }.map(\.value)
    }

    public func makeIterator() -> IndexingIterator<[(name: String, value: String)]> {
        fields.makeIterator()
    }
}

/// A complete HTTP response.
public struct CurlResponse: Sendable {
    public var status: Int
    public var headers: CurlHeaders
    public var body: [UInt8]
    public var httpVersion: HTTPVersion
    /// True when the transfer used a connection that was already open.
    public var reusedConnection: Bool
    /// Time from start to the last byte.
    public var totalTime: Duration

    public init(status: Int, headers: CurlHeaders, body: [UInt8], httpVersion: HTTPVersion, reusedConnection: Bool, totalTime: Duration) {
        self.status = status
        self.headers = headers
        self.body = body
        self.httpVersion = httpVersion
        self.reusedConnection = reusedConnection
        self.totalTime = totalTime
    }

    /// The body read as UTF-8 (invalid sequences replaced).
    public var bodyText: String { String(decoding: body, as: UTF8.self) }
}
