import Foundation
import Logging
import ServiceLifecycle
import ServiceLifecycleTestKit
import Synchronization
import TestSupport
import Testing

@testable import CurlHTTP

/// A client configured for loopback tests: never a proxy from the environment.
func loopbackConfiguration() -> CurlClient.Configuration {
    var configuration = CurlClient.Configuration()
    configuration.proxy = .none
    configuration.timeout = .seconds(20)
    return configuration
}

final class SeenCounter: Sendable {
    private let value = Mutex(0)
    /// Adds one and returns the new count.
    func increment() -> Int { value.withLock { $0 += 1; return $0 } }
}

@Suite("CurlClient against loopback servers")
struct CurlClientTests {
    @Test("1,000 concurrent requests are all answered correctly over a bounded set of reused connections")
    func thousandConcurrent() async throws {
        let server = try await TestHTTPServer.start { request in
            TestHTTPResponse(headers: [("X-Echo-Path", request.uri)], text: "echo:\(request.uri)")
        }
        var configuration = loopbackConfiguration()
        configuration.maxConnectionsPerHost = 16
        try await CurlClient.withClient(configuration: configuration) { client in
            let results = try await withThrowingTaskGroup(of: (Int, CurlResponse).self) { group in
                for i in 0..<1000 {
                    group.addTask { (i, try await client.execute(CurlRequest(url: "\(server.baseURL)/item/\(i)"))) }
                }
                return try await group.reduce(into: [Int: CurlResponse]()) { $0[$1.0] = $1.1 }
            }
            #expect(results.count == 1000)
            for (i, response) in results {
                #expect(response.status == 200)
                #expect(response.bodyText == "echo:/item/\(i)")
                #expect(response.headers["x-echo-path"] == "/item/\(i)")
            }
        }
        #expect(server.requests.count == 1000)
        #expect(server.acceptedConnections <= 16, "accepted \(server.acceptedConnections) connections")
        try await server.stop()
    }

    @Test("sequential requests reuse one TCP connection (counted at the server)")
    func connectionReuse() async throws {
        let server = try await TestHTTPServer.start { _ in TestHTTPResponse(text: "ok") }
        try await CurlClient.withClient(configuration: loopbackConfiguration()) { client in
            for i in 0..<50 {
                let response = try await client.execute(CurlRequest(method: "POST", url: "\(server.baseURL)/r", body: Array("n=\(i)".utf8)))
                #expect(response.status == 200)
                #expect(response.reusedConnection == (i > 0))
                #expect(response.httpVersion == .http1_1)
            }
        }
        #expect(server.requests.count == 50)
        #expect(server.acceptedConnections == 1)
        try await server.stop()
    }

    @Test("the total timeout ends a slow request with .timedOut, marked as sent")
    func totalTimeout() async throws {
        let server = try await TestHTTPServer.start { _ in TestHTTPResponse(text: "late", delay: .seconds(3)) }
        try await CurlClient.withClient(configuration: loopbackConfiguration()) { client in
            let error = await #expect(throws: CurlError.self) {
                try await client.execute(CurlRequest(method: "POST", url: server.baseURL, body: [1, 2, 3], timeout: .milliseconds(200)))
            }
            #expect(error?.kind == .timedOut)
            #expect(error?.requestSent == true)
            #expect(error?.message.contains("imed out") == true)
        }
        try await server.stop()
    }

    @Test("cancelling the calling task aborts the transfer and closes its connection")
    func cancellation() async throws {
        let server = try await TestHTTPServer.start { _ in TestHTTPResponse(text: "never", delay: .seconds(30)) }
        try await CurlClient.withClient(configuration: loopbackConfiguration()) { client in
            let task = Task { try await client.execute(CurlRequest(url: server.baseURL)) }
            #expect(await eventually { server.requests.count == 1 })
            task.cancel()
            let result = await task.result
            #expect(throws: CurlError.self) { try result.get() }
            #expect((try? result.get()) == nil)
            if case .failure(let error as CurlError) = result { #expect(error.kind == .cancelled) }
            #expect(await eventually { server.closedConnections == 1 }, "the aborted transfer's connection is closed")
            #expect(client.liveEasyHandles.current == 0)
        }
        try await server.stop()
    }

    @Test("cancelling a POST the server has received reports .cancelled with requestSent, so it is not resent")
    func cancelAfterSend() async throws {
        let server = try await TestHTTPServer.start { _ in TestHTTPResponse(text: "never", delay: .seconds(30)) }
        try await CurlClient.withClient(configuration: loopbackConfiguration()) { client in
            let task = Task { try await client.execute(CurlRequest(method: "POST", url: server.baseURL, body: Array("pay 100".utf8))) }
            // The whole request is at the server, which holds its answer: the transfer is mid-flight.
            #expect(await eventually { server.requests.count == 1 })
            task.cancel()
            let result = await task.result
            if case .failure(let error as CurlError) = result {
                #expect(error.kind == .cancelled)
                #expect(error.requestSent, "the server has the payment: calling it unsent invites paying twice")
            } else {
                Issue.record("expected cancellation, got \(result)")
            }
        }
        #expect(server.requests.map(\.bodyText) == ["pay 100"])
        try await server.stop()
    }

    @Test("cancelling a request still queued for a connection reports nothing sent; the one on the wire, sent")
    func cancelBeforeSend() async throws {
        let server = try await TestHTTPServer.start { _ in TestHTTPResponse(text: "never", delay: .seconds(30)) }
        var configuration = loopbackConfiguration()
        configuration.maxConnectionsPerHost = 1
        try await CurlClient.withClient(configuration: configuration) { client in
            // The one connection allowed is held by a POST the server has and does not answer.
            let onWire = Task { try await client.execute(CurlRequest(method: "POST", url: server.baseURL, body: Array("first".utf8))) }
            #expect(await eventually { server.requests.count == 1 })
            // The second is inside libcurl (its easy handle exists), waiting for that connection.
            let queued = Task { try await client.execute(CurlRequest(method: "POST", url: server.baseURL, body: Array("second".utf8))) }
            #expect(await eventually { client.liveEasyHandles.current == 2 })
            try await Task.sleep(for: .milliseconds(100))
            queued.cancel()
            let queuedResult = await queued.result
            if case .failure(let error as CurlError) = queuedResult {
                #expect(error.kind == .cancelled)
                #expect(!error.requestSent, "nothing of it left the machine: safe to send again")
            } else {
                Issue.record("expected cancellation, got \(queuedResult)")
            }
            onWire.cancel()
            let onWireResult = await onWire.result
            if case .failure(let error as CurlError) = onWireResult {
                #expect(error.kind == .cancelled)
                #expect(error.requestSent)
            } else {
                Issue.record("expected cancellation, got \(onWireResult)")
            }
        }
        #expect(server.requests.map(\.bodyText) == ["first"], "the queued request never reached the server")
        try await server.stop()
    }

    @Test("a task cancelled before it calls execute fails at once without touching the network")
    func cancelledBeforeSubmit() async throws {
        let server = try await TestHTTPServer.start { _ in TestHTTPResponse(text: "ok") }
        try await CurlClient.withClient(configuration: loopbackConfiguration()) { client in
            let task = Task {
                withUnsafeCurrentTask { $0?.cancel() }
                return try await client.execute(CurlRequest(url: server.baseURL))
            }
            let result = await task.result
            if case .failure(let error as CurlError) = result { #expect(error.kind == .cancelled) } else { Issue.record("expected cancellation, got \(result)") }
        }
        #expect(server.requests.isEmpty)
        try await server.stop()
    }

    @Test("connection refused is .connectFailed, with nothing sent")
    func connectionRefused() async throws {
        // A port handed out once per process and checked free, which nothing binds: a stopped server's
        // ephemeral port could be taken at once by another test's server.
        let url = "http://127.0.0.1:\(try await uniqueTestPort())/"
        try await CurlClient.withClient(configuration: loopbackConfiguration()) { client in
            let error = await #expect(throws: CurlError.self) { try await client.execute(CurlRequest(url: url)) }
            #expect(error?.kind == .connectFailed)
            #expect(error?.requestSent == false)
        }
    }

    @Test("a server that drops the connection after reading the request gives .connectionLost, marked as sent")
    func droppedConnection() async throws {
        let server = try await TestHTTPServer.start { _ in TestHTTPResponse(dropConnection: true) }
        try await CurlClient.withClient(configuration: loopbackConfiguration()) { client in
            let error = await #expect(throws: CurlError.self) {
                try await client.execute(CurlRequest(method: "POST", url: server.baseURL, body: Array("x".utf8)))
            }
            #expect(error?.kind == .connectionLost)
            #expect(error?.requestSent == true)
        }
        try await server.stop()
    }

    @Test("a POST is never resent behind the caller's back when a reused connection dies after sending it")
    func noSilentResend() async throws {
        let counter = SeenCounter()
        let server = try await TestHTTPServer.start { _ in
            // The second request on the kept-alive connection is read, then the connection is dropped.
            counter.increment() == 2 ? TestHTTPResponse(dropConnection: true) : TestHTTPResponse(text: "ok")
        }
        try await CurlClient.withClient(configuration: loopbackConfiguration()) { client in
            let first = try await client.execute(CurlRequest(method: "POST", url: server.baseURL, body: Array("first".utf8)))
            #expect(first.bodyText == "ok")
            let error = await #expect(throws: CurlError.self) {
                try await client.execute(CurlRequest(method: "POST", url: server.baseURL, body: Array("pay once".utf8)))
            }
            #expect(error?.kind == .connectionLost)
            #expect(error?.requestSent == true)
        }
        #expect(server.requests.map(\.bodyText) == ["first", "pay once"], "sent exactly once")
        try await server.stop()
    }

    @Test("an idempotent request is retried on a fresh connection when a reused one dies")
    func idempotentRetry() async throws {
        let counter = SeenCounter()
        let server = try await TestHTTPServer.start { _ in
            counter.increment() == 2 ? TestHTTPResponse(dropConnection: true) : TestHTTPResponse(text: "ok")
        }
        try await CurlClient.withClient(configuration: loopbackConfiguration()) { client in
            let a = try await client.execute(CurlRequest(method: "PUT", url: server.baseURL, body: Array("a".utf8)))
            let b = try await client.execute(CurlRequest(method: "PUT", url: server.baseURL, body: Array("b".utf8)))
            #expect(a.bodyText == "ok" && b.bodyText == "ok")
        }
        #expect(server.requests.map(\.bodyText) == ["a", "b", "b"], "libcurl rewound the body and sent it again")
        #expect(server.acceptedConnections == 2)
        try await server.stop()
    }

    @Test("10 MB bodies both ways")
    func largeBodies() async throws {
        var rng = SystemRandomNumberGenerator()
        var upload = [UInt8](repeating: 0, count: 10 * 1024 * 1024)
        upload.withUnsafeMutableBytes { raw in
            for i in stride(from: 0, to: raw.count, by: 8) { raw.storeBytes(of: rng.next() as UInt64, toByteOffset: i, as: UInt64.self) }
        }
        let server = try await TestHTTPServer.start { request in
            TestHTTPResponse(headers: [("Content-Type", "application/octet-stream")], body: request.body.reversed())
        }
        try await CurlClient.withClient(configuration: loopbackConfiguration()) { client in
            let response = try await client.execute(CurlRequest(method: "PUT", url: "\(server.baseURL)/blob", body: upload))
            #expect(response.status == 200)
            #expect(response.body.count == upload.count)
            #expect(response.body == upload.reversed())
        }
        #expect(server.requests.first?.method == "PUT")
        #expect(server.requests.first?.body == upload)
        try await server.stop()
    }

    @Test("a response larger than the limit fails with .responseTooLarge")
    func responseLimit() async throws {
        let server = try await TestHTTPServer.start { _ in TestHTTPResponse(body: [UInt8](repeating: 7, count: 2 * 1024 * 1024)) }
        var configuration = loopbackConfiguration()
        configuration.maxResponseBodySize = 1024 * 1024
        try await CurlClient.withClient(configuration: configuration) { client in
            let error = await #expect(throws: CurlError.self) { try await client.execute(CurlRequest(url: server.baseURL)) }
            #expect(error?.kind == .responseTooLarge)
        }
        try await server.stop()
    }

    @Test("request headers arrive, response headers are read in order and by any case")
    func headers() async throws {
        let server = try await TestHTTPServer.start { request in
            TestHTTPResponse(status: 201, headers: [("Set-Thing", "a"), ("Set-Thing", "b"), ("X-Got", request.header("x-request-id") ?? "-")], text: "")
        }
        try await CurlClient.withClient(configuration: loopbackConfiguration()) { client in
            let response = try await client.execute(CurlRequest(
                method: "POST", url: server.baseURL,
                headers: [("X-Request-Id", "r-1"), ("Content-Type", "application/json"), ("User-Agent", "tests/1")],
                body: Array("{}".utf8)
            ))
            #expect(response.status == 201)
            #expect(response.headers["X-GOT"] == "r-1")
            #expect(response.headers.values("set-thing") == ["a", "b"])
            #expect(response.headers["content-length"] == "0")
        }
        let received = try #require(server.requests.first)
        #expect(received.header("content-type") == "application/json")
        #expect(received.header("user-agent") == "tests/1")
        #expect(received.header("expect") == nil, "no 100-continue round trip")
        #expect(received.bodyText == "{}")
        try await server.stop()
    }

    @Test("methods: GET, HEAD, DELETE, POST without a body")
    func methods() async throws {
        let server = try await TestHTTPServer.start { request in TestHTTPResponse(text: request.method) }
        try await CurlClient.withClient(configuration: loopbackConfiguration()) { client in
            #expect(try await client.execute(CurlRequest(method: "GET", url: server.baseURL)).bodyText == "GET")
            let head = try await client.execute(CurlRequest(method: "HEAD", url: server.baseURL))
            #expect(head.status == 200 && head.body.isEmpty)
            #expect(try await client.execute(CurlRequest(method: "DELETE", url: server.baseURL)).bodyText == "DELETE")
            #expect(try await client.execute(CurlRequest(method: "POST", url: server.baseURL)).bodyText == "POST")
        }
        #expect(server.requests.map(\.method) == ["GET", "HEAD", "DELETE", "POST"])
        try await server.stop()
    }

    @Test("bad requests fail clearly: malformed URL, other schemes, header injection")
    func invalidRequests() async throws {
        try await CurlClient.withClient(configuration: loopbackConfiguration()) { client in
            for url in ["not a url", "ftp://127.0.0.1/x", "file:///etc/passwd"] {
                let error = await #expect(throws: CurlError.self) { try await client.execute(CurlRequest(url: url)) }
                #expect(error?.kind == .invalidRequest, "\(url): \(String(describing: error))")
            }
            let error = await #expect(throws: CurlError.self) {
                try await client.execute(CurlRequest(url: "http://127.0.0.1:1/", headers: [("X-A", "b\r\nX-Injected: 1")]))
            }
            #expect(error?.kind == .invalidRequest)
        }
    }

    @Test("an explicit proxy receives absolute-form requests; NO_PROXY hosts go direct")
    func proxy() async throws {
        let proxy = try await TestHTTPServer.start { request in TestHTTPResponse(text: "via proxy \(request.uri)") }
        let origin = try await TestHTTPServer.start { _ in TestHTTPResponse(text: "direct") }
        var configuration = loopbackConfiguration()
        configuration.proxy = .environment(["HTTP_PROXY": proxy.baseURL, "NO_PROXY": "127.0.0.1"])
        try await CurlClient.withClient(configuration: configuration) { client in
            let proxied = try await client.execute(CurlRequest(url: "http://gateway.invalid/api/Payouts/Create"))
            #expect(proxied.bodyText == "via proxy http://gateway.invalid/api/Payouts/Create")
            let direct = try await client.execute(CurlRequest(url: origin.baseURL))
            #expect(direct.bodyText == "direct")
        }
        #expect(proxy.requests.count == 1)
        #expect(origin.requests.count == 1)
        configuration.proxy = .none
        try await CurlClient.withClient(configuration: configuration) { client in
            let error = await #expect(throws: CurlError.self) { try await client.execute(CurlRequest(url: "http://gateway.invalid/")) }
            #expect(error?.kind == .couldNotResolve)
        }
        #expect(proxy.requests.count == 1)
        try await proxy.stop()
        try await origin.stop()
    }

    @Test("environment proxy resolution: lower case first, then upper case, per scheme")
    func proxyResolution() {
        let resolved = ResolvedProxy(.environment(["https_proxy": "http://p1:1", "HTTPS_PROXY": "http://p2:2", "HTTP_PROXY": "http://p3:3", "no_proxy": "localhost"]))
        #expect(resolved.proxy(for: "https://x") == "http://p1:1")
        #expect(resolved.proxy(for: "http://x") == "http://p3:3")
        #expect(resolved.noProxy == "localhost")
        #expect(ResolvedProxy(.environment([:])).proxy(for: "http://x") == "")
        #expect(ResolvedProxy(.none).proxy(for: "http://x") == "")
        #expect(ResolvedProxy(.environment(["ALL_PROXY": "http://a:1"])).proxy(for: "https://x") == "http://a:1")
    }

    @Test("graceful shutdown lets in-flight requests finish, refuses new ones, and leaves no thread or handle behind")
    func gracefulShutdown() async throws {
        let server = try await TestHTTPServer.start { _ in TestHTTPResponse(text: "slow but fine", delay: .milliseconds(300)) }
        let client = try CurlClient(configuration: loopbackConfiguration())
        let counter = client.liveEasyHandles
        let runTask = Task { try await client.run() }
        let inFlight = Task { try await client.execute(CurlRequest(url: server.baseURL)) }
        #expect(await eventually { server.requests.count == 1 })
        let threadID = client.driverThreadID.load(ordering: .relaxed)
        #expect(threadID > 0)
        #expect(FileManager.default.fileExists(atPath: "/proc/self/task/\(threadID)"))
        client.shutdown()
        let refused = await #expect(throws: CurlError.self) { try await client.execute(CurlRequest(url: server.baseURL)) }
        #expect(refused?.kind == .shutdown)
        #expect(try await inFlight.value.bodyText == "slow but fine")
        try await runTask.value
        #expect(counter.current == 0)
        #expect(!FileManager.default.fileExists(atPath: "/proc/self/task/\(threadID)"), "driver thread is gone")
        try await server.stop()
    }

    @Test("as a Service in a ServiceGroup: graceful shutdown of the group stops it")
    func serviceGroup() async throws {
        let server = try await TestHTTPServer.start { _ in TestHTTPResponse(text: "ok") }
        let client = try CurlClient(configuration: loopbackConfiguration())
        let group = ServiceGroup(configuration: .init(services: [client], logger: Logger(label: "test")))
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            #expect(try await client.execute(CurlRequest(url: server.baseURL)).bodyText == "ok")
            await group.triggerGracefulShutdown()
            try await tasks.waitForAll()
        }
        #expect(client.liveEasyHandles.current == 0)
        try await server.stop()
    }

    @Test("cancelling run() aborts in-flight transfers with .shutdown")
    func hardStop() async throws {
        let server = try await TestHTTPServer.start { _ in TestHTTPResponse(text: "never", delay: .seconds(30)) }
        let client = try CurlClient(configuration: loopbackConfiguration())
        let runTask = Task { try await client.run() }
        let inFlight = Task { try await client.execute(CurlRequest(url: server.baseURL)) }
        #expect(await eventually { server.requests.count == 1 })
        runTask.cancel()
        try await runTask.value
        let result = await inFlight.result
        if case .failure(let error as CurlError) = result { #expect(error.kind == .shutdown) } else { Issue.record("expected .shutdown, got \(result)") }
        #expect(client.liveEasyHandles.current == 0)
        try await server.stop()
    }

    @Test("cancelling run() while a POST is held at the server reports .shutdown with requestSent; a queued one, unsent")
    func hardStopAfterSend() async throws {
        let server = try await TestHTTPServer.start { _ in TestHTTPResponse(text: "never", delay: .seconds(30)) }
        var configuration = loopbackConfiguration()
        configuration.maxConnectionsPerHost = 1
        let client = try CurlClient(configuration: configuration)
        let runTask = Task { try await client.run() }
        let onWire = Task { try await client.execute(CurlRequest(method: "POST", url: server.baseURL, body: Array("pay 100".utf8))) }
        #expect(await eventually { server.requests.count == 1 })
        let queued = Task { try await client.execute(CurlRequest(method: "POST", url: server.baseURL, body: Array("pay 200".utf8))) }
        #expect(await eventually { client.liveEasyHandles.current == 2 })
        runTask.cancel()
        try await runTask.value
        let onWireResult = await onWire.result
        if case .failure(let error as CurlError) = onWireResult {
            #expect(error.kind == .shutdown)
            #expect(error.requestSent, "the server has the payment: calling it unsent invites paying twice")
        } else {
            Issue.record("expected .shutdown, got \(onWireResult)")
        }
        let queuedResult = await queued.result
        if case .failure(let error as CurlError) = queuedResult {
            #expect(error.kind == .shutdown)
            #expect(!error.requestSent)
        } else {
            Issue.record("expected .shutdown, got \(queuedResult)")
        }
        #expect(server.requests.map(\.bodyText) == ["pay 100"])
        #expect(client.liveEasyHandles.current == 0)
        try await server.stop()
    }

    @Test("requests made before run() starts wait for it")
    func queuedBeforeRun() async throws {
        let server = try await TestHTTPServer.start { _ in TestHTTPResponse(text: "ok") }
        let client = try CurlClient(configuration: loopbackConfiguration())
        let early = Task { try await client.execute(CurlRequest(url: server.baseURL)) }
        try await Task.sleep(for: .milliseconds(50))
        #expect(server.requests.isEmpty)
        let runTask = Task { try await client.run() }
        #expect(try await early.value.bodyText == "ok")
        client.shutdown()
        try await runTask.value
        try await server.stop()
    }

    @Test("TLS options reach libcurl: a missing CA bundle or client certificate fails the handshake as .tls")
    func tlsOptions() async throws {
        let server = try await TestHTTPServer.start { _ in TestHTTPResponse(text: "plain http") }
        let https = "https://127.0.0.1:\(server.port)/"
        var configuration = loopbackConfiguration()
        configuration.tls.caBundlePath = "/nonexistent/ca.pem"
        try await CurlClient.withClient(configuration: configuration) { client in
            let error = await #expect(throws: CurlError.self) { try await client.execute(CurlRequest(url: https)) }
            #expect(error?.kind == .tls, "\(String(describing: error))")
        }
        configuration = loopbackConfiguration()
        configuration.tls.clientCertificatePath = "/nonexistent/client.pem"
        try await CurlClient.withClient(configuration: configuration) { client in
            let error = await #expect(throws: CurlError.self) { try await client.execute(CurlRequest(url: https)) }
            #expect(error?.kind == .tls, "\(String(describing: error))")
        }
        // A plain-HTTP server spoken to over TLS: the handshake fails, nothing is answered.
        try await CurlClient.withClient(configuration: loopbackConfiguration()) { client in
            let error = await #expect(throws: CurlError.self) { try await client.execute(CurlRequest(url: https)) }
            #expect(error?.kind == .tls, "\(String(describing: error))")
        }
        try await server.stop()
    }

    @Test("shut down before it ever ran: run() returns at once and queued requests fail with .shutdown")
    func shutdownBeforeRun() async throws {
        let client = try CurlClient(configuration: loopbackConfiguration())
        let queued = Task { try await client.execute(CurlRequest(url: "http://127.0.0.1:1/")) }
        try await Task.sleep(for: .milliseconds(50))
        client.shutdown()
        try await client.run()
        let result = await queued.result
        if case .failure(let error as CurlError) = result { #expect(error.kind == .shutdown) } else { Issue.record("expected .shutdown, got \(result)") }
        await #expect(throws: CurlError.self) { try await client.run() }
    }

    @Test("errors describe themselves with libcurl's words")
    func errorDescription() {
        let error = CurlError(kind: .timedOut, message: "Operation timed out after 200 milliseconds", curlCode: 28, requestSent: true)
        #expect(error.description.contains("timedOut"))
        #expect(error.description.contains("Operation timed out"))
        #expect(error.kind != .connectFailed)
    }
}
