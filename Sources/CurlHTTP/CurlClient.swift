import CCurl
import Logging
import ServiceLifecycle
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// An async/await HTTP client on libcurl's multi interface.
///
/// One multi handle, driven by one dedicated thread, carries every transfer, so connections are reused
/// across requests and no request blocks a Swift concurrency thread. Run it as a `Service` (or through
/// `withClient`); requests made before `run()` starts wait for it.
///
/// ```swift
/// let client = CurlClient(configuration: .init(), logger: logger)
/// // in a ServiceGroup, or:
/// try await CurlClient.withClient { client in
///     let response = try await client.execute(CurlRequest(url: "http://127.0.0.1:9090/"))
/// }
/// ```
public final class CurlClient: Service, Sendable {
    public let configuration: Configuration
    let logger: Logger
    let proxy: ResolvedProxy
    let multi: MultiHandle
    let state = Locked(ClientState())
    /// Easy handles alive: zero once every transfer has ended.
    let liveEasyHandles = LiveCounter()
    /// The driver thread's kernel id while it runs (Linux), for tests and debugging.
    let driverThreadID = Atomic<Int>(0)

    public init(configuration: Configuration = .init(), logger: Logger = Logger(label: "CurlHTTP")) throws(CurlError) {
        self.configuration = configuration
        self.logger = logger
        self.proxy = ResolvedProxy(configuration.proxy)
        self.multi = try MultiHandle(configuration: configuration)
    }

    /// Runs a client for the duration of `body`, then shuts it down gracefully.
    public static func withClient<R: Sendable>(
        configuration: Configuration = .init(),
        logger: Logger = Logger(label: "CurlHTTP"),
        _ body: (CurlClient) async throws -> R
    ) async throws -> R {
        let client = try CurlClient(configuration: configuration, logger: logger)
        return try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await client.run() }
            do {
                let result = try await body(client)
                client.shutdown()
                try await group.waitForAll()
                return result
            } catch {
                client.shutdown()
                try? await group.waitForAll()
                throw error
            }
        }
    }

    /// Sends `request` and returns the whole response. Cancelling the calling task aborts the transfer.
    public func execute(_ request: CurlRequest) async throws -> CurlResponse {
        let id = state.withLock { $0.allocateID() }
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<CurlResponse, any Error>) in
                let action = state.withLock { $0.submit(Submission(id: id, request: request, continuation: continuation)) }
                switch action {
                case .wakeDriver: multi.wakeup()
                case .queued: break
                case .fail(let error): continuation.resume(throwing: error)
                }
            }
        } onCancel: {
            let action = state.withLock { $0.cancel(id) }
            switch action {
            case .resume(let continuation): continuation.resume(throwing: CurlError.cancelled())
            case .wakeDriver: multi.wakeup()
            case .none: break
            }
        }
    }

    /// Runs the driver thread until graceful shutdown (in-flight transfers finish) or cancellation
    /// (they are aborted). Returns once the thread has exited.
    public func run() async throws {
        switch state.withLock({ $0.start() }) {
        case .started:
            break
        case .alreadyStopped:
            // Shut down before it ever ran: fail whatever was queued and return.
            for waiter in state.withLock({ $0.driverExited() }) { waiter.resume() }
            return
        case .alreadyRunning:
            throw CurlError(kind: .invalidRequest, message: "CurlClient.run() called twice")
        }
        let thread = try startDriverThread()
        await withTaskCancellationHandler {
            await withGracefulShutdownHandler {
                await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                    let done = state.withLock { $0.awaitExit(continuation) }
                    if done { continuation.resume() }
                }
            } onGracefulShutdown: {
                self.shutdown()
            }
        } onCancel: {
            self.state.withLock { $0.beginStop(graceful: false) }
            self.multi.wakeup()
        }
        // The thread has signalled its exit; joining is immediate and frees its resources.
        pthread_join(thread, nil)
    }

    /// Stops taking new requests; `run()` returns once the in-flight ones have finished.
    public func shutdown() {
        state.withLock { $0.beginStop(graceful: true) }
        multi.wakeup()
    }

    private func startDriverThread() throws(CurlError) -> pthread_t {
        let box = Unmanaged.passRetained(DriverBox(client: self)).toOpaque()
        var thread = pthread_t()
        let rc = pthread_create(&thread, nil, { argument in
            guard let argument else { return nil }
            let box = Unmanaged<DriverBox>.fromOpaque(argument).takeRetainedValue()
            ccurl_set_thread_name("curl-driver")
            box.client.driverThreadID.store(ccurl_thread_id(), ordering: .relaxed)
            var driver = Driver(client: box.client)
            driver.run()
            return nil
        }, box)
        guard rc == 0 else {
            Unmanaged<DriverBox>.fromOpaque(box).release()
            state.withLock { $0.driverExited() }.forEach { $0.resume() }
            throw CurlError(kind: .other, message: "could not start the libcurl driver thread (\(rc))")
        }
        return thread
    }

    /// True when the loaded libcurl speaks HTTP/2.
    public static var supportsHTTP2: Bool { CurlGlobal.hasHTTP2 }
    /// libcurl's version line, e.g. `libcurl/7.88.1 OpenSSL/3.0.11 ...`.
    public static var libcurlVersion: String { CurlGlobal.versionString }
}

private final class DriverBox: Sendable {
    let client: CurlClient
    init(client: CurlClient) { self.client = client }
}

/// A request on its way to the driver thread.
struct Submission: Sendable {
    let id: UInt64
    let request: CurlRequest
    let continuation: CheckedContinuation<CurlResponse, any Error>
}

/// The part of the client's state shared between callers and the driver thread, under one lock.
/// Pure bookkeeping: it returns what to do, and callers do it outside the lock.
struct ClientState: Sendable {
    enum Phase: Sendable { case idle, running, draining, aborting, stopped }

    private(set) var phase: Phase = .idle
    private var nextID: UInt64 = 0
    private var pending: [Submission] = []
    private var inDriver: Set<UInt64> = []
    private var cancels: [UInt64] = []
    private var cancelledEarly: Set<UInt64> = []
    private var exitWaiters: [CheckedContinuation<Void, Never>] = []

    enum SubmitAction { case wakeDriver, queued, fail(CurlError) }
    enum CancelAction { case resume(CheckedContinuation<CurlResponse, any Error>), wakeDriver, none }

    mutating func allocateID() -> UInt64 {
        nextID += 1
        return nextID
    }

    mutating func submit(_ submission: Submission) -> SubmitAction {
        if cancelledEarly.remove(submission.id) != nil { return .fail(.cancelled()) }
        switch phase {
        case .draining, .aborting, .stopped: return .fail(.shutdown())
        case .idle:
            pending.append(submission)
            return .queued
        case .running:
            pending.append(submission)
            return .wakeDriver
        }
    }

    mutating func cancel(_ id: UInt64) -> CancelAction {
        if let index = pending.firstIndex(where: { $0.id == id }) {
            return .resume(pending.remove(at: index).continuation)
        }
        if inDriver.contains(id) {
            cancels.append(id)
            return .wakeDriver
        }
        // Cancelled before it was submitted: submit() will see this and fail at once.
        if id <= nextID { cancelledEarly.insert(id) }
        return .none
    }

    enum StartAction { case started, alreadyStopped, alreadyRunning }

    mutating func start() -> StartAction {
        switch phase {
        case .idle:
            phase = .running
            return .started
        case .draining, .aborting:
            return .alreadyStopped
        case .running, .stopped:
            return .alreadyRunning
        }
    }

    mutating func beginStop(graceful: Bool) {
        switch phase {
        case .idle, .running: phase = graceful ? .draining : .aborting
        case .draining: if !graceful { phase = .aborting }
        case .aborting, .stopped: break
        }
    }

    /// Registers a waiter for the driver's exit; true if it has already exited.
    mutating func awaitExit(_ continuation: CheckedContinuation<Void, Never>) -> Bool {
        if phase == .stopped { return true }
        exitWaiters.append(continuation)
        return false
    }

    struct Work {
        var adds: [Submission]
        var cancels: [UInt64]
        var phase: Phase
    }

    /// What the driver should do on this turn of its loop.
    mutating func takeWork() -> Work {
        let adds = pending
        pending.removeAll(keepingCapacity: true)
        for submission in adds { inDriver.insert(submission.id) }
        let work = Work(adds: adds, cancels: cancels, phase: phase)
        cancels.removeAll(keepingCapacity: true)
        return work
    }

    mutating func finished(_ id: UInt64) {
        inDriver.remove(id)
    }

    /// The driver has left its loop: fail anything still queued and release the exit waiters.
    mutating func driverExited() -> [CheckedContinuation<Void, Never>] {
        phase = .stopped
        for submission in pending { submission.continuation.resume(throwing: CurlError.shutdown()) }
        pending.removeAll()
        defer { exitWaiters.removeAll() }
        return exitWaiters
    }
}

/// The loop on the driver thread: adds and cancels transfers, drives libcurl, completes continuations.
struct Driver {
    let client: CurlClient
    var active: [UnsafeMutableRawPointer: EasyHandle] = [:]
    var byID: [UInt64: UnsafeMutableRawPointer] = [:]

    init(client: CurlClient) {
        self.client = client
    }

    mutating func run() {
        let multi = client.multi
        while true {
            let work = client.state.withLock { $0.takeWork() }
            for submission in work.adds { add(submission) }
            // An aborted transfer may already have sent its request: the error must say so (asked before
            // `finish` takes the handle out of libcurl), or a payment that reached the gateway looks unsent.
            for id in work.cancels {
                if let pointer = byID[id], let easy = active[pointer] {
                    finish(pointer, with: .failure(.cancelled(requestSent: easy.requestSent)))
                }
            }
            if work.phase == .aborting {
                for (pointer, easy) in Array(active) { finish(pointer, with: .failure(.shutdown(requestSent: easy.requestSent))) }
                break
            }
            if work.phase == .draining, active.isEmpty { break }

            multi.perform()
            multi.drainCompleted { pointer, code in
                guard let easy = active[pointer] else { return }
                finish(pointer, with: easy.result(code))
            }
            if active.isEmpty, work.phase == .draining { continue }
            multi.poll(timeoutMilliseconds: 1000)
        }
        let waiters = client.state.withLock { $0.driverExited() }
        for waiter in waiters { waiter.resume() }
    }

    mutating func add(_ submission: Submission) {
        guard let easy = EasyHandle(
            id: submission.id, continuation: submission.continuation,
            maxResponseBodySize: client.configuration.maxResponseBodySize, liveCounter: client.liveEasyHandles
        ) else {
            client.state.withLock { $0.finished(submission.id) }
            submission.continuation.resume(throwing: CurlError(kind: .other, message: "curl_easy_init failed"))
            return
        }
        if let error = easy.configure(submission.request, configuration: client.configuration, proxy: client.proxy) {
            client.state.withLock { $0.finished(submission.id) }
            submission.continuation.resume(throwing: error)
            return
        }
        let code = client.multi.add(easy)
        guard code == CURLM_OK else {
            client.state.withLock { $0.finished(submission.id) }
            submission.continuation.resume(throwing: CurlError(kind: .other, message: String(cString: curl_multi_strerror(code))))
            return
        }
        active[easy.handle] = easy
        byID[easy.id] = easy.handle
    }

    mutating func finish(_ pointer: UnsafeMutableRawPointer, with result: Result<CurlResponse, CurlError>) {
        guard let easy = active.removeValue(forKey: pointer) else { return }
        byID.removeValue(forKey: easy.id)
        client.multi.remove(easy)
        client.state.withLock { $0.finished(easy.id) }
        switch result {
        case .success(let response): easy.continuation.resume(returning: response)
        case .failure(let error): easy.continuation.resume(throwing: error)
        }
    }
}
