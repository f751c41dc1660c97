import CCurl

/// One transfer: a libcurl easy handle with the buffers it points into.
///
/// Touched only by the driver thread. libcurl's C callbacks reach it through an unretained pointer; the
/// driver's table of active transfers keeps it alive until libcurl is done with it.
final class EasyHandle {
    let id: UInt64
    let handle: UnsafeMutableRawPointer
    let continuation: CheckedContinuation<CurlResponse, any Error>
    private var headerList: UnsafeMutablePointer<curl_slist>?
    private var requestBody: [UInt8] = []
    private var requestBodyOffset = 0
    private let errorBuffer: UnsafeMutablePointer<CChar>
    private let maxResponseBodySize: Int
    private let liveCounter: LiveCounter

    var responseBody: [UInt8] = []
    var responseHeaders = CurlHeaders()
    var responseTooLarge = false

    init?(id: UInt64, continuation: CheckedContinuation<CurlResponse, any Error>, maxResponseBodySize: Int, liveCounter: LiveCounter) {
        guard let handle = curl_easy_init() else { return nil }
        self.id = id
        self.handle = handle
        self.continuation = continuation
        self.maxResponseBodySize = maxResponseBodySize
        self.liveCounter = liveCounter
        self.errorBuffer = .allocate(capacity: Int(CURL_ERROR_SIZE) + 1)
        self.errorBuffer.initialize(repeating: 0, count: Int(CURL_ERROR_SIZE) + 1)
        liveCounter.add(1)
    }

    deinit {
        curl_easy_cleanup(handle)
        if let headerList { curl_slist_free_all(headerList) }
        errorBuffer.deallocate()
        liveCounter.add(-1)
    }

    /// Sets every option of `request`. Returns an error for a request libcurl refuses to take.
    func configure(_ request: CurlRequest, configuration: CurlClient.Configuration, proxy: ResolvedProxy) -> CurlError? {
        var failure: CURLcode = CURLE_OK
        func check(_ code: CURLcode) {
            if code != CURLE_OK, failure == CURLE_OK { failure = code }
        }
        let me = Unmanaged.passUnretained(self).toOpaque()

        check(ccurl_easy_setopt_ptr(handle, CURLOPT_ERRORBUFFER, errorBuffer))
        check(ccurl_easy_setopt_long(handle, CURLOPT_NOSIGNAL, 1))
        if configuration.verbose { check(ccurl_easy_setopt_long(handle, CURLOPT_VERBOSE, 1)) }
        // libcurl guesses a scheme for bare host names and tolerates odd characters; a caller's URL must be explicit.
        let scheme = request.url.prefix(8).lowercased()
        guard scheme.hasPrefix("http://") || scheme.hasPrefix("https://"),
            !request.url.unicodeScalars.contains(where: { $0.value <= 0x20 || $0.value == 0x7F })
        else {
            return CurlError(kind: .invalidRequest, message: "not an absolute http(s) URL: \(request.url.prefix(200))")
        }
        check(ccurl_easy_setopt_string(handle, CURLOPT_URL, request.url))
        // Only http and https, in both directions: a payment call never follows a redirect elsewhere.
        check(ccurl_easy_setopt_string(handle, CURLOPT_PROTOCOLS_STR, "http,https"))
        check(ccurl_easy_setopt_long(handle, CURLOPT_FOLLOWLOCATION, 0))
        check(ccurl_easy_setopt_long(handle, CURLOPT_TCP_NODELAY, 1))
        check(ccurl_easy_setopt_long(handle, CURLOPT_TCP_KEEPALIVE, 1))
        // Where HTTP/2 is possible (TLS with ALPN, or h2c by prior knowledge), wait for a connection that may
        // multiplex rather than open one per concurrent transfer. Not for plain http otherwise: there libcurl
        // learns the version only from the first answer, and every other transfer would wait for it.
        if scheme.hasPrefix("https://") || configuration.httpVersion == .http2PriorKnowledge {
            check(ccurl_easy_setopt_long(handle, CURLOPT_PIPEWAIT, 1))
        }
        check(ccurl_easy_setopt_long(handle, CURLOPT_TIMEOUT_MS, milliseconds(request.timeout ?? configuration.timeout)))
        check(ccurl_easy_setopt_long(handle, CURLOPT_CONNECTTIMEOUT_MS, milliseconds(request.connectTimeout ?? configuration.connectTimeout)))

        switch configuration.httpVersion {
        case .automatic: check(ccurl_easy_setopt_long(handle, CURLOPT_HTTP_VERSION, Int(CURL_HTTP_VERSION_2TLS)))
        case .http1_1: check(ccurl_easy_setopt_long(handle, CURLOPT_HTTP_VERSION, Int(CURL_HTTP_VERSION_1_1)))
        case .http2PriorKnowledge: check(ccurl_easy_setopt_long(handle, CURLOPT_HTTP_VERSION, Int(CURL_HTTP_VERSION_2_PRIOR_KNOWLEDGE)))
        }

        check(ccurl_easy_setopt_string(handle, CURLOPT_PROXY, proxy.proxy(for: request.url)))
        if let noProxy = proxy.noProxy {
            check(ccurl_easy_setopt_string(handle, CURLOPT_NOPROXY, noProxy))
        }

        let tls = configuration.tls
        if let ca = tls.caBundlePath { check(ccurl_easy_setopt_string(handle, CURLOPT_CAINFO, ca)) }
        if let cert = tls.clientCertificatePath { check(ccurl_easy_setopt_string(handle, CURLOPT_SSLCERT, cert)) }
        if let key = tls.clientKeyPath { check(ccurl_easy_setopt_string(handle, CURLOPT_SSLKEY, key)) }
        if let password = tls.clientKeyPassword { check(ccurl_easy_setopt_string(handle, CURLOPT_KEYPASSWD, password)) }
        if !tls.verifyPeer {
            check(ccurl_easy_setopt_long(handle, CURLOPT_SSL_VERIFYPEER, 0))
            check(ccurl_easy_setopt_long(handle, CURLOPT_SSL_VERIFYHOST, 0))
        }

        // Method and body.
        let method = request.method.uppercased()
        if let body = request.body {
            // The body goes through a read callback, not CURLOPT_POSTFIELDS: libcurl can then only resend it
            // on a fresh connection by rewinding, and for a request that is not idempotent we refuse the
            // rewind (no seek callback), so a payment is never sent twice behind the caller's back.
            requestBody = body
            check(ccurl_easy_setopt_long(handle, CURLOPT_POST, 1))
            check(ccurl_easy_setopt_off_t(handle, CURLOPT_POSTFIELDSIZE_LARGE, curl_off_t(body.count)))
            check(ccurl_easy_setopt_write_cb(handle, CURLOPT_READFUNCTION, { buffer, size, count, user in
                guard let user, let buffer else { return 0 }
                let me = Unmanaged<EasyHandle>.fromOpaque(user).takeUnretainedValue()
                let n = min(size * count, me.requestBody.count - me.requestBodyOffset)
                if n > 0 {
                    me.requestBody.withUnsafeBytes { source in
                        UnsafeMutableRawPointer(buffer).copyMemory(from: source.baseAddress! + me.requestBodyOffset, byteCount: n)
                    }
                    me.requestBodyOffset += n
                }
                return n
            }))
            check(ccurl_easy_setopt_ptr(handle, CURLOPT_READDATA, me))
            if request.resendable {
                check(ccurl_easy_setopt_seek_cb(handle, CURLOPT_SEEKFUNCTION, { user, offset, origin in
                    guard let user, origin == SEEK_SET, offset >= 0 else { return Int32(CURL_SEEKFUNC_CANTSEEK) }
                    let me = Unmanaged<EasyHandle>.fromOpaque(user).takeUnretainedValue()
                    guard Int(offset) <= me.requestBody.count else { return Int32(CURL_SEEKFUNC_FAIL) }
                    me.requestBodyOffset = Int(offset)
                    return Int32(CURL_SEEKFUNC_OK)
                }))
                check(ccurl_easy_setopt_ptr(handle, CURLOPT_SEEKDATA, me))
            }
            if method != "POST" { check(ccurl_easy_setopt_string(handle, CURLOPT_CUSTOMREQUEST, method)) }
        } else {
            switch method {
            case "GET": check(ccurl_easy_setopt_long(handle, CURLOPT_HTTPGET, 1))
            case "HEAD": check(ccurl_easy_setopt_long(handle, CURLOPT_NOBODY, 1))
            case "POST":
                check(ccurl_easy_setopt_long(handle, CURLOPT_POST, 1))
                check(ccurl_easy_setopt_off_t(handle, CURLOPT_POSTFIELDSIZE_LARGE, 0))
            default: check(ccurl_easy_setopt_string(handle, CURLOPT_CUSTOMREQUEST, method))
            }
        }

        // Headers. An empty `Expect:` stops libcurl waiting for `100 Continue` before large bodies.
        var list: UnsafeMutablePointer<curl_slist>? = nil
        var hasUserAgent = false
        var hasContentType = false
        for (name, value) in request.headers {
            // Scalars, not Characters: "\r\n" is one Character and would slip past a Character test.
            if name.isEmpty || name.unicodeScalars.contains(where: { $0 == "\r" || $0 == "\n" || $0 == ":" || $0 == " " })
                || value.unicodeScalars.contains(where: { $0 == "\r" || $0 == "\n" || $0 == "\0" })
            {
                curl_slist_free_all(list)
                return CurlError(kind: .invalidRequest, message: "header '\(name)' holds a line break or colon")
            }
            let lower = name.lowercased()
            if lower == "user-agent" { hasUserAgent = true }
            if lower == "content-type" { hasContentType = true }
            list = curl_slist_append(list, value.isEmpty ? "\(name);" : "\(name): \(value)")
        }
        list = curl_slist_append(list, "Expect:")
        if request.body != nil, !hasContentType {
            // libcurl would otherwise claim a form; an unlabelled body is just bytes.
            list = curl_slist_append(list, "Content-Type: application/octet-stream")
        }
        if !hasUserAgent, let agent = configuration.userAgent {
            list = curl_slist_append(list, "User-Agent: \(agent)")
        }
        headerList = list
        check(ccurl_easy_setopt_slist(handle, CURLOPT_HTTPHEADER, list))

        check(ccurl_easy_setopt_write_cb(handle, CURLOPT_WRITEFUNCTION, { data, size, count, user in
            guard let user else { return 0 }
            let me = Unmanaged<EasyHandle>.fromOpaque(user).takeUnretainedValue()
            let n = size * count
            if me.responseBody.count + n > me.maxResponseBodySize {
                me.responseTooLarge = true
                return 0  // makes libcurl abort the transfer with CURLE_WRITE_ERROR
            }
            if let data, n > 0 {
                data.withMemoryRebound(to: UInt8.self, capacity: n) { bytes in
                    me.responseBody.append(contentsOf: UnsafeBufferPointer(start: bytes, count: n))
                }
            }
            return n
        }))
        check(ccurl_easy_setopt_ptr(handle, CURLOPT_WRITEDATA, me))
        check(ccurl_easy_setopt_write_cb(handle, CURLOPT_HEADERFUNCTION, { data, size, count, user in
            guard let user, let data else { return 0 }
            let me = Unmanaged<EasyHandle>.fromOpaque(user).takeUnretainedValue()
            let n = size * count
            let line = data.withMemoryRebound(to: UInt8.self, capacity: n) { String(decoding: UnsafeBufferPointer(start: $0, count: n), as: UTF8.self) }
            me.receivedHeaderLine(line)
            return n
        }))
        check(ccurl_easy_setopt_ptr(handle, CURLOPT_HEADERDATA, me))

        if failure != CURLE_OK {
            return CurlError(kind: .invalidRequest, message: message(for: failure), curlCode: Int(failure.rawValue))
        }
        return nil
    }

    /// Collects header lines. A new status line (after `100 Continue`, a proxy's CONNECT answer or a
    /// redirect) starts a new set.
    private func receivedHeaderLine(_ line: String) {
        // Work on scalars: "\r\n" is a single Character in Swift.
        var scalars = Substring(line).unicodeScalars
        while let last = scalars.last, last == "\r" || last == "\n" { scalars.removeLast() }
        let text = Substring(scalars)
        if text.hasPrefix("HTTP/") {
            responseHeaders.removeAll()
            return
        }
        guard let colon = text.firstIndex(of: ":") else { return }
        let name = String(text[..<colon])
        var value = text[text.index(after: colon)...]
        while let first = value.first, first == " " || first == "\t" { value.removeFirst() }
        while let last = value.last, last == " " || last == "\t" { value.removeLast() }
        responseHeaders.append(name: name, value: String(value))
    }

    /// libcurl's message for `code`: its error buffer when filled, else the generic text.
    func message(for code: CURLcode) -> String {
        let detail = String(cString: errorBuffer)
        if !detail.isEmpty { return detail }
        return String(cString: curl_easy_strerror(code))
    }

    /// True when at least one byte of the request has gone out, so the server may have acted on it; asked
    /// of every transfer that ends without a response (a libcurl error, a cancel, a hard stop), since the
    /// payment layer resends only what this calls unsent.
    ///
    /// The signal is `CURLINFO_REQUEST_SIZE`. libcurl resets it when the transfer starts and adds to it,
    /// during the transfer, every byte the connection accepts (7.88 counts the header block in
    /// `Curl_buffer_send`, 8.x every byte in `Curl_xfer_send`), so it is right mid-transfer, not only once
    /// the transfer is done: zero while queued for a connection, resolving or connecting, above zero from the
    /// first byte written. It never misses a sent request; it may over-report, the safe way, where bytes went
    /// to a proxy's CONNECT or into the HTTP/2 layer's buffers but not yet on to the origin. Not
    /// `requestBodyOffset`: it counts body bytes handed to libcurl, not bytes sent, and a request without a
    /// body has none. Not a debug callback: libcurl calls it only with `CURLOPT_VERBOSE` on.
    /// `CURLOPT_PREREQFUNCTION` runs just before the request is sent, so it would call a request sent when
    /// nothing had gone out.
    var requestSent: Bool {
        var requestSize = 0
        _ = ccurl_easy_getinfo_long(handle, CURLINFO_REQUEST_SIZE, &requestSize)
        return requestSize > 0
    }

    /// The outcome of a finished transfer.
    func result(_ code: CURLcode) -> Result<CurlResponse, CurlError> {
        guard code == CURLE_OK else {
            return .failure(CurlError(kind: Self.kind(for: code, tooLarge: responseTooLarge), message: message(for: code), curlCode: Int(code.rawValue), requestSent: requestSent))
        }
        var status = 0
        _ = ccurl_easy_getinfo_long(handle, CURLINFO_RESPONSE_CODE, &status)
        var version = 0
        _ = ccurl_easy_getinfo_long(handle, CURLINFO_HTTP_VERSION, &version)
        var connects = 0
        _ = ccurl_easy_getinfo_long(handle, CURLINFO_NUM_CONNECTS, &connects)
        var micros: curl_off_t = 0
        _ = ccurl_easy_getinfo_off_t(handle, CURLINFO_TOTAL_TIME_T, &micros)
        let httpVersion: HTTPVersion
        switch version {
        case Int(CURL_HTTP_VERSION_1_0): httpVersion = .http1_0
        case Int(CURL_HTTP_VERSION_1_1): httpVersion = .http1_1
        case Int(CURL_HTTP_VERSION_2_0): httpVersion = .http2
        case Int(CURL_HTTP_VERSION_3): httpVersion = .http3
        default: httpVersion = .unknown
        }
        return .success(CurlResponse(
            status: status,
            headers: responseHeaders,
            body: responseBody,
            httpVersion: httpVersion,
            reusedConnection: connects == 0,
            totalTime: .microseconds(Int64(micros))
        ))
    }

    static func kind(for code: CURLcode, tooLarge: Bool) -> CurlError.Kind {
        switch code {
        case CURLE_UNSUPPORTED_PROTOCOL, CURLE_URL_MALFORMAT, CURLE_BAD_FUNCTION_ARGUMENT, CURLE_NOT_BUILT_IN:
            return .invalidRequest
        case CURLE_COULDNT_RESOLVE_HOST, CURLE_COULDNT_RESOLVE_PROXY:
            return .couldNotResolve
        case CURLE_COULDNT_CONNECT:
            return .connectFailed
        case CURLE_OPERATION_TIMEDOUT:
            return .timedOut
        case CURLE_SSL_CONNECT_ERROR, CURLE_PEER_FAILED_VERIFICATION, CURLE_SSL_CERTPROBLEM, CURLE_SSL_CIPHER,
            CURLE_SSL_CACERT_BADFILE, CURLE_SSL_ENGINE_NOTFOUND, CURLE_SSL_ENGINE_SETFAILED, CURLE_SSL_ENGINE_INITFAILED,
            CURLE_SSL_SHUTDOWN_FAILED, CURLE_SSL_CRL_BADFILE, CURLE_SSL_ISSUER_ERROR, CURLE_SSL_PINNEDPUBKEYNOTMATCH,
            CURLE_SSL_INVALIDCERTSTATUS, CURLE_SSL_CLIENTCERT, CURLE_USE_SSL_FAILED:
            return .tls
        case CURLE_GOT_NOTHING, CURLE_RECV_ERROR, CURLE_SEND_ERROR, CURLE_PARTIAL_FILE, CURLE_SEND_FAIL_REWIND:
            return .connectionLost
        case CURLE_WEIRD_SERVER_REPLY, CURLE_HTTP2, CURLE_HTTP2_STREAM, CURLE_BAD_CONTENT_ENCODING:
            return .protocolError
        case CURLE_WRITE_ERROR where tooLarge:
            return .responseTooLarge
        case CURLE_ABORTED_BY_CALLBACK:
            return .cancelled
        default:
            return .other
        }
    }
}

@available(*, unavailable)
extension EasyHandle: Sendable {}

func milliseconds(_ d: Duration) -> Int {
    let (seconds, attoseconds) = d.components
    return max(1, Int(seconds) * 1000 + Int(attoseconds / 1_000_000_000_000_000))
}
