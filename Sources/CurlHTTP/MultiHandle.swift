import CCurl
import Synchronization

/// libcurl's multi handle: one connection cache and one event loop for all transfers.
///
/// Everything but `wakeup()` runs on the driver thread. `curl_multi_wakeup` is documented as safe to call
/// from any thread, which is what makes the `@unchecked Sendable` hold.
final class MultiHandle: @unchecked Sendable {
    let handle: UnsafeMutableRawPointer

    init(configuration: CurlClient.Configuration) throws(CurlError) {
        CurlGlobal.ensureInitialized()
        guard let handle = curl_multi_init() else {
            throw CurlError(kind: .other, message: "curl_multi_init failed")
        }
        self.handle = handle
        _ = ccurl_multi_setopt_long(handle, CURLMOPT_MAX_HOST_CONNECTIONS, max(0, configuration.maxConnectionsPerHost))
        _ = ccurl_multi_setopt_long(handle, CURLMOPT_MAXCONNECTS, max(1, configuration.maxCachedConnections))
        _ = ccurl_multi_setopt_long(handle, CURLMOPT_PIPELINING, Int(CURLPIPE_MULTIPLEX))
    }

    deinit {
        curl_multi_cleanup(handle)
    }

    func wakeup() {
        _ = curl_multi_wakeup(handle)
    }

    func add(_ easy: EasyHandle) -> CURLMcode {
        curl_multi_add_handle(handle, easy.handle)
    }

    func remove(_ easy: EasyHandle) {
        _ = curl_multi_remove_handle(handle, easy.handle)
    }

    func perform() {
        var running: Int32 = 0
        _ = curl_multi_perform(handle, &running)
    }

    /// Waits for socket activity, libcurl's next timeout, a wakeup, or `timeoutMilliseconds`.
    func poll(timeoutMilliseconds: Int32) {
        _ = curl_multi_poll(handle, nil, 0, timeoutMilliseconds, nil)
    }

    /// Calls `body` for each finished transfer's easy handle pointer and result.
    func drainCompleted(_ body: (UnsafeMutableRawPointer, CURLcode) -> Void) {
        var remaining: Int32 = 0
        while let message = curl_multi_info_read(handle, &remaining) {
            if message.pointee.msg == CURLMSG_DONE, let easy = message.pointee.easy_handle {
                body(easy, ccurl_msg_result(message))
            }
        }
    }
}

/// `curl_global_init` must run once, before any other libcurl call, in a process.
enum CurlGlobal {
    private static let initialized: Bool = {
        curl_global_init(Int(CURL_GLOBAL_ALL)) == CURLE_OK
    }()

    static func ensureInitialized() {
        _ = initialized
    }

    /// True when the loaded libcurl was built with HTTP/2 support.
    public static var hasHTTP2: Bool { ccurl_has_http2() != 0 }
    static var versionString: String { String(cString: ccurl_version_string()) }
}

/// A thread-safe count of live objects.
final class LiveCounter: Sendable {
    private let value = Atomic<Int>(0)

    func add(_ delta: Int) {
        value.add(delta, ordering: .relaxed)
    }

    var current: Int { value.load(ordering: .relaxed) }
}
