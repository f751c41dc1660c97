import Hummingbird
import Logging
import NIOCore
import Synchronization

/// What a handler learns about a request that the request log line reports afterwards.
final class RequestTrace: Sendable {
    private struct Values {
        var mrn: String?
        var gatewayLatency: Duration?
    }
    private let values = Mutex(Values())

    var mrn: String? {
        get { values.withLock { $0.mrn } }
        set { values.withLock { $0.mrn = newValue } }
    }

    var gatewayLatency: Duration? {
        get { values.withLock { $0.gatewayLatency } }
        set { values.withLock { $0.gatewayLatency = newValue } }
    }
}

/// The request context of both listeners: Hummingbird's core storage plus the trace. Its remote address gives
/// the request's span the peer's address (`net.sock.peer.addr`).
public struct SidecarRequestContext: RequestContext, RemoteAddressRequestContext {
    public var coreContext: CoreRequestContextStorage
    let trace = RequestTrace()
    /// The peer's address, for the callback allowlist.
    public let remoteAddress: SocketAddress?

    public init(source: ApplicationRequestContextSource) {
        self.coreContext = .init(source: source)
        self.remoteAddress = source.channel.remoteAddress
    }

    /// The internal API takes small JSON bodies only.
    public var maxUploadSize: Int { 64 * 1024 }
}
