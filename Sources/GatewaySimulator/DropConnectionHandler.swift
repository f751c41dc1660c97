import HTTPTypes
import NIOCore
import NIOHTTPTypes

extension HTTPField.Name {
    /// Set on a response by the `drop` fault; never leaves the process.
    static let simulatorDrop = HTTPField.Name("x-gateway-sim-drop")!
}

/// Closes the connection instead of writing a response marked with `x-gateway-sim-drop`, so the client sees
/// the connection drop after its request was read: the "outcome unknown" case a sidecar must survive.
final class DropConnectionHandler: ChannelOutboundHandler, RemovableChannelHandler {
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    private var dropping = false

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        if case .head(let head) = unwrapOutboundIn(data), head.headerFields[.simulatorDrop] != nil {
            dropping = true
            context.close(promise: nil)
        }
        if dropping {
            promise?.fail(ChannelError.ioOnClosedChannel)
            return
        }
        context.write(data, promise: promise)
    }
}
