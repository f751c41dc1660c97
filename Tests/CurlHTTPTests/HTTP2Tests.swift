import NIOCore
import NIOHTTP1
import NIOHTTP2
import NIOPosix
import Synchronization
import TestSupport
import Testing

@testable import CurlHTTP

/// An h2c (HTTP/2 without TLS, prior knowledge) server that answers every stream with its path.
final class H2CServer: Sendable {
    let channel: any Channel
    let accepted: ConnectionCount

    final class ConnectionCount: Sendable {
        let value = Mutex(0)
    }

    init() async throws {
        let accepted = ConnectionCount()
        self.accepted = accepted
        channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .childChannelInitializer { channel in
                accepted.value.withLock { $0 += 1 }
                return channel.configureHTTP2Pipeline(mode: .server) { stream in
                    stream.eventLoop.makeCompletedFuture {
                        try stream.pipeline.syncOperations.addHandler(HTTP2FramePayloadToHTTP1ServerCodec())
                        try stream.pipeline.syncOperations.addHandler(PathEcho())
                    }
                }.map { _ in }
            }
            .bind(host: "127.0.0.1", port: 0)
            .get()
    }

    var url: String { "http://127.0.0.1:\(channel.localAddress?.port ?? 0)" }

    final class PathEcho: ChannelInboundHandler, Sendable {
        typealias InboundIn = HTTPServerRequestPart
        typealias OutboundOut = HTTPServerResponsePart

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            guard case .head(let head) = unwrapInboundIn(data) else { return }
            let body = context.channel.allocator.buffer(string: "h2:\(head.uri)")
            var headers = HTTPHeaders()
            headers.add(name: "content-length", value: String(body.readableBytes))
            context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http2, status: .ok, headers: headers))), promise: nil)
            context.write(wrapOutboundOut(.body(.byteBuffer(body))), promise: nil)
            context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
        }
    }
}

@Suite("HTTP/2")
struct HTTP2Tests {
    @Test("h2c with prior knowledge speaks HTTP/2")
    func priorKnowledge() async throws {
        let server = try await H2CServer()
        var configuration = CurlClient.Configuration()
        configuration.proxy = .none
        configuration.httpVersion = .http2PriorKnowledge
        try await CurlClient.withClient(configuration: configuration) { client in
            let response = try await client.execute(CurlRequest(url: "\(server.url)/first"))
            #expect(response.httpVersion == .http2)
            #expect(response.status == 200)
            #expect(response.bodyText == "h2:/first")
        }
        try await server.channel.close()
    }

    @Test("the libcurl on this machine speaks HTTP/2 (Debian's libcurl4-openssl-dev does)")
    func libcurlHasHTTP2() {
        #expect(CurlClient.supportsHTTP2, "\(CurlClient.libcurlVersion)")
    }
}
