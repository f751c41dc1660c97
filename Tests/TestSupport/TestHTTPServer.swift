import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix

/// A request as the loopback test server received it.
public struct ReceivedHTTPRequest: Sendable {
    public var method: String
    /// The request target as sent: a path, or an absolute URL when it came through as a proxy request.
    public var uri: String
    public var headers: [(String, String)]
    public var body: [UInt8]
    /// When the request was complete.
    public var receivedAt: ContinuousClock.Instant
    /// When it ended for the client: its answer was written, or the connection closed first (the client gave up or
    /// died). Nil while neither happened. With `receivedAt`, the time the request was in the server's hands.
    public var endedAt: ContinuousClock.Instant?

    public func header(_ name: String) -> String? {
        headers.first { $0.0.lowercased() == name.lowercased() }?.1
    }

    public var bodyText: String { String(decoding: body, as: UTF8.self) }
}

/// What the test server answers.
public struct TestHTTPResponse: Sendable {
    public var status: Int
    public var headers: [(String, String)]
    public var body: [UInt8]
    /// Wait this long before answering.
    public var delay: Duration?
    /// Close the connection instead of answering.
    public var dropConnection: Bool

    public init(status: Int = 200, headers: [(String, String)] = [], body: [UInt8] = [], delay: Duration? = nil, dropConnection: Bool = false) {
        self.status = status
        self.headers = headers
        self.body = body
        self.delay = delay
        self.dropConnection = dropConnection
    }

    public init(status: Int = 200, headers: [(String, String)] = [], text: String, delay: Duration? = nil) {
        self.init(status: status, headers: headers, body: Array(text.utf8), delay: delay)
    }
}

/// An HTTP/1.1 server on 127.0.0.1 for tests: it counts accepted TCP connections, records every request,
/// and answers with a handler. Keep-alive is honoured, so connection reuse by a client can be observed.
public final class TestHTTPServer: Sendable {
    public typealias Handler = @Sendable (ReceivedHTTPRequest) -> TestHTTPResponse

    private let channel: any Channel
    private let stats: NIOLockedValueBox<Stats>
    public let port: Int

    struct Stats {
        var accepted = 0
        var closed = 0
        var requests: [ReceivedHTTPRequest] = []

        mutating func end(_ index: Int) {
            if requests[index].endedAt == nil { requests[index].endedAt = .now }
        }
    }

    public static func start(_ handler: @escaping Handler) async throws -> TestHTTPServer {
        let stats = NIOLockedValueBox(Stats())
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.backlog, value: 1024)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                stats.withLockedValue { $0.accepted += 1 }
                channel.closeFuture.whenComplete { _ in stats.withLockedValue { $0.closed += 1 } }
                return channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
                    try channel.pipeline.syncOperations.addHandler(RequestHandler(handler: handler, stats: stats))
                }
            }
            .bind(host: "127.0.0.1", port: 0)
            .get()
        return TestHTTPServer(channel: channel, stats: stats)
    }

    private init(channel: any Channel, stats: NIOLockedValueBox<Stats>) {
        self.channel = channel
        self.stats = stats
        self.port = channel.localAddress?.port ?? 0
    }

    public var baseURL: String { "http://127.0.0.1:\(port)" }
    /// TCP connections accepted so far.
    public var acceptedConnections: Int { stats.withLockedValue { $0.accepted } }
    /// Accepted connections that have since closed.
    public var closedConnections: Int { stats.withLockedValue { $0.closed } }
    public var requests: [ReceivedHTTPRequest] { stats.withLockedValue { $0.requests } }

    public func stop() async throws {
        try await channel.close()
    }

    final class RequestHandler: ChannelInboundHandler, @unchecked Sendable {
        // Only ever touched on its channel's event loop.
        typealias InboundIn = HTTPServerRequestPart
        typealias OutboundOut = HTTPServerResponsePart

        let handler: Handler
        let stats: NIOLockedValueBox<Stats>
        var head: HTTPRequestHead?
        var body: [UInt8] = []
        /// The request being answered on this connection (its index in `requests`).
        var open: Int?

        init(handler: @escaping Handler, stats: NIOLockedValueBox<Stats>) {
            self.handler = handler
            self.stats = stats
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            switch unwrapInboundIn(data) {
            case .head(let h):
                head = h
                body = []
            case .body(var buffer):
                body.append(contentsOf: buffer.readBytes(length: buffer.readableBytes) ?? [])
            case .end:
                guard let head else { return }
                let request = ReceivedHTTPRequest(method: head.method.rawValue, uri: head.uri, headers: head.headers.map { ($0.name, $0.value) }, body: body,
                                                  receivedAt: .now, endedAt: nil)
                open = stats.withLockedValue { stats in
                    stats.requests.append(request)
                    return stats.requests.count - 1
                }
                let response = handler(request)
                let keepAlive = head.isKeepAlive
                if let delay = response.delay {
                    let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
                    context.eventLoop.scheduleTask(in: .nanoseconds(Int64(delay.components.seconds) * 1_000_000_000 + delay.components.attoseconds / 1_000_000_000)) {
                        let (me, context) = loopBound.value
                        me.write(response, keepAlive: keepAlive, context: context)
                    }
                } else {
                    write(response, keepAlive: keepAlive, context: context)
                }
                self.head = nil
            }
        }

        func channelInactive(context: ChannelHandlerContext) {
            endOpenRequest()
            context.fireChannelInactive()
        }

        func endOpenRequest() {
            guard let index = open else { return }
            open = nil
            stats.withLockedValue { $0.end(index) }
        }

        func write(_ response: TestHTTPResponse, keepAlive: Bool, context: ChannelHandlerContext) {
            guard context.channel.isActive else { return }
            defer { endOpenRequest() }
            if response.dropConnection {
                context.close(promise: nil)
                return
            }
            var headers = HTTPHeaders(response.headers)
            headers.replaceOrAdd(name: "Content-Length", value: String(response.body.count))
            if !keepAlive { headers.replaceOrAdd(name: "Connection", value: "close") }
            let head = HTTPResponseHead(version: .http1_1, status: HTTPResponseStatus(statusCode: response.status), headers: headers)
            context.write(wrapOutboundOut(.head(head)), promise: nil)
            if !response.body.isEmpty {
                context.write(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(bytes: response.body)))), promise: nil)
            }
            let done = context.writeAndFlush(wrapOutboundOut(.end(nil)))
            if !keepAlive {
                let loopBound = NIOLoopBound(context, eventLoop: context.eventLoop)
                done.whenComplete { _ in loopBound.value.close(promise: nil) }
            }
        }
    }
}

/// Waits until `condition` holds, checking every 20 ms, for at most `timeout`. Returns whether it held.
/// For waiting on asynchronous effects (a callback arriving), not for measuring speed.
public func eventually(timeout: Duration = .seconds(10), _ condition: () async throws -> Bool) async rethrows -> Bool {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if try await condition() { return true }
        try? await Task.sleep(for: .milliseconds(20))
    }
    return try await condition()
}

/// A test server's answers, in order; once used up, `fallback` (which a test may change).
public final class AnswerScript: Sendable {
    private struct State {
        var queue: [TestHTTPResponse] = []
        var fallback: TestHTTPResponse
    }
    private let state: NIOLockedValueBox<State>

    public init(fallback: TestHTTPResponse = TestHTTPResponse(status: 200, text: "")) {
        state = NIOLockedValueBox(State(fallback: fallback))
    }

    public func set(_ answers: [TestHTTPResponse]) { state.withLockedValue { $0.queue = answers } }
    public func setFallback(_ answer: TestHTTPResponse) { state.withLockedValue { $0.fallback = answer } }

    public func next() -> TestHTTPResponse {
        state.withLockedValue { $0.queue.isEmpty ? $0.fallback : $0.queue.removeFirst() }
    }
}

#if canImport(Glibc)
import Glibc
#endif

private let nextTestPort = NIOLockedValueBox(20_000 + Int(getpid() % 40) * 300)

/// A TCP port on 127.0.0.1 for a server a test starts itself, when the port must be known before the
/// server runs. Ports come from 20000-31999, below Linux's ephemeral range (32768 and up), so outgoing
/// connections never take them; each is handed out once per process and checked free by binding it.
public func uniqueTestPort() async throws -> Int {
    for _ in 0..<500 {
        let port = nextTestPort.withLockedValue { value -> Int in
            value += 1
            if value >= 32_000 { value = 20_000 }
            return value
        }
        if let channel = try? await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton).bind(host: "127.0.0.1", port: port).get() {
            try? await channel.close()
            return port
        }
    }
    throw ChannelError.ioOnClosedChannel
}
