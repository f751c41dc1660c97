import ConfigurationValues
import HTTPTypes
import HummingbirdCore
import Logging
import NIOCore
import NIOHTTPTypes
import Synchronization

/// What both listeners hold against abuse (contract section 9): a deadline for each request head, an idle
/// timeout for kept-alive connections, a cap on open connections, and, on the callback listener, the source
/// allowlist applied when a connection is accepted, before a byte of it is read.
struct ListenerLimits: Sendable {
    /// A request head (request line and headers) must be complete within this, counted from the connection's
    /// opening or from the first byte of each later request on it (PAYSIDECAR_HEADER_TIMEOUT).
    var headerTimeout: Duration
    /// A kept-alive connection with no request for this long is closed (PAYSIDECAR_IDLE_TIMEOUT).
    var idleTimeout: Duration
    /// Open connections at most; more are closed as soon as they are accepted (PAYSIDECAR_MAX_CONNECTIONS).
    var maxConnections: Int
    /// Admits a peer address when the connection is accepted; nil admits every peer.
    var admit: (@Sendable (String?) -> Bool)?

    init(_ configuration: SidecarConfiguration, allowlist: [IPRange]? = nil) {
        headerTimeout = configuration.headerTimeout
        idleTimeout = configuration.idleTimeout
        maxConnections = configuration.maxConnections
        if let allowlist {
            admit = { address in address.map { peer in allowlist.contains { $0.contains(peer) } } ?? false }
        }
    }
}

/// Counts a listener's open connections against its cap.
final class ConnectionGate: Sendable {
    let limit: Int
    private let open = Atomic<Int>(0)

    init(limit: Int) {
        self.limit = limit
    }

    var count: Int { open.load(ordering: .relaxed) }

    func tryAcquire() -> Bool {
        if open.wrappingAdd(1, ordering: .relaxed).newValue <= limit { return true }
        open.wrappingSubtract(1, ordering: .relaxed)
        return false
    }

    func release() {
        open.wrappingSubtract(1, ordering: .relaxed)
    }
}

/// A connection refused when it was accepted (over the cap, or a source not on the allowlist).
struct ConnectionRefused: Error {}

/// Hummingbird's HTTP/1 child channel with `ListenerLimits` in front: a refused connection is closed before
/// its first read; an admitted one gets the head deadline and the idle timeout.
struct GuardedHTTP1Channel: ServerChildChannel {
    typealias Value = HTTP1Channel.Value
    let responder: HTTPChannelHandler.Responder
    let limits: ListenerLimits
    let gate: ConnectionGate
    /// Told about every refused connection: `over_capacity` or `address_not_allowed`.
    let onRefused: @Sendable (String) -> Void

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        let peer = channel.remoteAddress?.ipAddress
        if let admit = limits.admit, !admit(peer) {
            return refuse(channel, "address_not_allowed")
        }
        guard gate.tryAcquire() else { return refuse(channel, "over_capacity") }
        let gate = self.gate
        channel.closeFuture.whenComplete { _ in gate.release() }
        let clock = RequestHeadClock(timeout: TimeAmount(limits.headerTimeout))
        // Bound to the connection's loop, where the pipeline is built (and where the handlers use it).
        let bound = NIOLoopBound(clock, eventLoop: channel.eventLoop)
        let http = HTTP1Channel(
            responder: responder,
            configuration: .init(additionalChannelHandlers: [RequestHeadHandler(clock: bound.value)], idleTimeout: TimeAmount(limits.idleTimeout))
        )
        return channel.eventLoop.makeCompletedFuture {
            try channel.pipeline.syncOperations.addHandler(RequestStartHandler(clock: clock))
        }
        .flatMap { http.setup(channel: channel, logger: logger) }
        .flatMapErrorThrowing { error in
            channel.close(promise: nil)
            throw error
        }
    }

    func handle(value: Value, logger: Logger) async {
        await HTTP1Channel(responder: responder).handle(value: value, logger: logger)
    }

    private func refuse(_ channel: any Channel, _ reason: String) -> EventLoopFuture<Value> {
        onRefused(reason)
        channel.close(promise: nil)
        return channel.eventLoop.makeFailedFuture(ConnectionRefused())
    }
}

extension HTTPServerBuilder {
    /// HTTP/1 behind `ListenerLimits`; `gate` counts this listener's connections.
    static func guardedHTTP1(_ limits: ListenerLimits, gate: ConnectionGate, onRefused: @escaping @Sendable (String) -> Void) -> HTTPServerBuilder {
        HTTPServerBuilder { responder in GuardedHTTP1Channel(responder: responder, limits: limits, gate: gate, onRefused: onRefused) }
    }
}

extension TimeAmount {
    init(_ duration: Duration) {
        let (seconds, attoseconds) = duration.components
        self = .nanoseconds(seconds * 1_000_000_000 + attoseconds / 1_000_000_000)
    }
}

/// One connection's head deadline, shared by the two handlers that see its raw bytes and its parsed parts.
/// Touched only on the connection's event loop.
final class RequestHeadClock {
    let timeout: TimeAmount
    private var timer: Scheduled<Void>?
    /// Between a request's head and the end of its response.
    var inRequest = false

    init(timeout: TimeAmount) {
        self.timeout = timeout
    }

    /// Starts the deadline unless it runs already: the connection closes unless a head is complete in time.
    func start(_ context: ChannelHandlerContext) {
        guard timer == nil, !inRequest else { return }
        let channel = context.channel
        timer = context.eventLoop.assumeIsolated().scheduleTask(in: timeout) { [weak self] in
            self?.timer = nil
            channel.close(promise: nil)
        }
    }

    func stop() {
        timer?.cancel()
        timer = nil
    }
}

@available(*, unavailable)
extension RequestHeadClock: Sendable {}

/// First in the pipeline, on raw bytes: the connection's opening, and the first byte of each later request,
/// start the head deadline. Kept-alive connections waiting for their next request are not timed here (the
/// idle timeout is); a request that has begun is.
final class RequestStartHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    let clock: RequestHeadClock

    init(clock: RequestHeadClock) {
        self.clock = clock
    }

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { clock.start(context) }
    }

    func channelActive(context: ChannelHandlerContext) {
        clock.start(context)
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        clock.start(context)
        context.fireChannelRead(data)
    }

    func channelInactive(context: ChannelHandlerContext) {
        clock.stop()
        context.fireChannelInactive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        clock.stop()
    }
}

@available(*, unavailable)
extension RequestStartHandler: Sendable {}

/// After the HTTP decoder: a complete head stops the deadline; the end of its response makes the connection
/// wait for the next request.
final class RequestHeadHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart
    let clock: RequestHeadClock

    init(clock: RequestHeadClock) {
        self.clock = clock
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if case .head = unwrapInboundIn(data) {
            clock.inRequest = true
            clock.stop()
        }
        context.fireChannelRead(data)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        if case .end = unwrapOutboundIn(data) { clock.inRequest = false }
        context.write(data, promise: promise)
    }
}

@available(*, unavailable)
extension RequestHeadHandler: Sendable {}
