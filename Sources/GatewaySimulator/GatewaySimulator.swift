import CurlHTTP
import Foundation
import GatewayProtocol
import Hummingbird
import Logging
import NIOCore
import ServiceLifecycle
import Synchronization

/// A faithful, stateful stand-in for the payment gateway, for tests and the demo.
///
/// It serves the gateway's five endpoints (checking every signature and answering as the gateway does),
/// keeps orders and a merchant balance, sends signed callbacks with retries, renders a cashier page, and
/// offers a control API under `/_sim/` to settle orders, set the balance and inject faults.
public final class GatewaySimulator: Service, Sendable {
    public let configuration: SimulatorConfiguration
    let logger: Logger
    let state: Mutex<SimulatorState>
    let http: CurlClient
    let jobs: AsyncStream<CallbackJob>
    let jobSink: AsyncStream<CallbackJob>.Continuation
    private let running = Mutex<RunningState>(RunningState())

    private struct RunningState {
        var port: Int?
        var waiters: [CheckedContinuation<Int, Never>] = []
    }

    enum CallbackJob: Sendable {
        case deliver(mrn: String)
        case settleLater(mrn: String, after: Duration)
    }

    public init(configuration: SimulatorConfiguration, logger: Logger = Logger(label: "gateway-sim")) throws {
        self.configuration = configuration
        self.logger = logger
        self.state = Mutex(SimulatorState(balanceFen: configuration.balanceFen))
        var httpConfiguration = CurlClient.Configuration()
        httpConfiguration.timeout = configuration.callbackTimeout
        httpConfiguration.connectTimeout = min(configuration.callbackTimeout, .seconds(5))
        httpConfiguration.userAgent = "gateway-sim"
        httpConfiguration.proxy = .none
        self.http = try CurlClient(configuration: httpConfiguration, logger: logger)
        (self.jobs, self.jobSink) = AsyncStream.makeStream(of: CallbackJob.self)
    }

    /// The port the simulator listens on, once it runs (useful with port 0).
    public func boundPort() async -> Int {
        await withCheckedContinuation { continuation in
            let port = running.withLock { state -> Int? in
                if let port = state.port { return port }
                state.waiters.append(continuation)
                return nil
            }
            if let port { continuation.resume(returning: port) }
        }
    }

    /// `http://host:port` once running.
    public func baseURL() async -> String {
        "http://\(configuration.host):\(await boundPort())"
    }

    /// Runs the simulator for the duration of `body`, then stops it.
    public static func withRunning<R: Sendable>(
        _ configuration: SimulatorConfiguration,
        logger: Logger = Logger(label: "gateway-sim"),
        _ body: (GatewaySimulator) async throws -> R
    ) async throws -> R {
        let simulator = try GatewaySimulator(configuration: configuration, logger: logger)
        let services = ServiceGroup(configuration: .init(services: [simulator], gracefulShutdownSignals: [], logger: logger))
        return try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await services.run() }
            _ = await simulator.boundPort()
            do {
                let result = try await body(simulator)
                await services.triggerGracefulShutdown()
                try await group.waitForAll()
                return result
            } catch {
                await services.triggerGracefulShutdown()
                try? await group.waitForAll()
                throw error
            }
        }
    }

    public func run() async throws {
        let app = Application(
            router: makeRouter(),
            server: .http1(configuration: .init(additionalChannelHandlers: [DropConnectionHandler()])),
            configuration: .init(address: .hostname(configuration.host, port: configuration.port), serverName: nil),
            onServerRunning: { channel in self.serverStarted(port: channel.localAddress?.port ?? 0) },
            logger: logger
        )
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await self.http.run() }
            group.addTask {
                // Pending callback retries end with the simulator rather than hold up its shutdown.
                await cancelWhenGracefulShutdown {
                    await withDiscardingTaskGroup { jobGroup in
                        for await job in self.jobs {
                            jobGroup.addTask { await self.perform(job) }
                        }
                    }
                }
            }
            group.addTask {
                defer {
                    self.jobSink.finish()
                    self.http.shutdown()
                }
                try await app.runService(gracefulShutdownSignals: [])
            }
            try await group.waitForAll()
        }
    }

    private func serverStarted(port: Int) {
        let waiters = running.withLock { state in
            state.port = port
            defer { state.waiters.removeAll() }
            return state.waiters
        }
        for waiter in waiters { waiter.resume(returning: port) }
    }

    // MARK: Settlement and callbacks

    /// Settles an order and, when the gateway would, sends its callback.
    func settle(mrn: String, kind: OrderKind, paid: Bool, paidFen: Int64? = nil) throws(SimulatorState.SettleError) -> SimOrder {
        let order = try state.withLock { state throws(SimulatorState.SettleError) in
            try state.settle(mrn: mrn, kind: kind, paid: paid, paidFen: paidFen)
        }
        logger.info("order settled", metadata: ["mrn": "\(mrn)", "kind": "\(kind.rawValue)", "status": "\(order.statusText)"])
        // The gateway calls back on success only; its callbacks carry no status.
        if paid { jobSink.yield(.deliver(mrn: mrn)) }
        return order
    }

    func perform(_ job: CallbackJob) async {
        switch job {
        case .settleLater(let mrn, let delay):
            do { try await Task.sleep(for: delay) } catch { return }
            guard let kind = state.withLock({ $0.orders[mrn]?.kind }) else { return }
            _ = try? settle(mrn: mrn, kind: kind, paid: true)
        case .deliver(let mrn):
            await deliverCallback(mrn: mrn)
        }
    }

    /// Sends an order's callback until the receiver answers 200 `success` or the schedule runs out.
    func deliverCallback(mrn: String) async {
        guard let order = state.withLock({ $0.orders[mrn] }), order.status == .paid else { return }
        let fault = state.withLock { $0.takeFault(path: "callback") }
        if let delay = fault?.delay {
            do { try await Task.sleep(for: delay) } catch { return }
        }
        var badSignatureFirst = fault?.kind == .badSignature
        let copies = fault?.kind == .duplicate ? 2 : 1
        for _ in 0..<copies {
            var attempt = 0
            var delays = configuration.callbackRetrySchedule[...]
            while true {
                attempt += 1
                let body = callbackBody(order, corruptSignature: badSignatureFirst)
                badSignatureFirst = false
                let accepted = await sendCallback(order: order, body: body, attempt: attempt)
                if accepted { break }
                guard let delay = delays.popFirst() else {
                    logger.warning("callback abandoned after \(attempt) attempts", metadata: ["mrn": "\(mrn)"])
                    break
                }
                do { try await Task.sleep(for: delay) } catch { return }
            }
        }
    }

    /// The signed form the gateway posts; with `corruptSignature`, one hex digit of `sign` is changed.
    func callbackBody(_ order: SimOrder, corruptSignature: Bool) -> String {
        let secret = configuration.secretKey
        func corrupt(_ sign: String) -> String {
            guard corruptSignature, let first = sign.first else { return sign }
            return (first == "0" ? "1" : "0") + sign.dropFirst()
        }
        switch order.kind {
        case .deposit:
            var callback = DepositCallback(
                amount: AmountText.yuanText(fen: order.paidFen ?? order.amountFen), appKey: configuration.appKey,
                channel: String(order.channelId ?? 0), mrn: order.mrn, originAmount: order.amountText, secret: secret
            )
            callback.sign = corrupt(callback.sign)
            return callback.formBody
        case .payout:
            var callback = PayoutCallback(amount: order.amountText, appKey: configuration.appKey, mrn: order.mrn, secret: secret)
            callback.sign = corrupt(callback.sign)
            return callback.formBody
        }
    }

    func sendCallback(order: SimOrder, body: String, attempt: Int) async -> Bool {
        let request = CurlRequest(
            method: "POST", url: order.callbackUrl,
            headers: [("Content-Type", "application/x-www-form-urlencoded")],
            body: Array(body.utf8)
        )
        var record = CallbackAttempt(kind: order.kind, mrn: order.mrn, url: order.callbackUrl, attempt: attempt, body: body, accepted: false, at: Self.now())
        do {
            let response = try await http.execute(request)
            record.status = response.status
            record.responseBody = String(response.bodyText.prefix(200))
            record.accepted = response.status == 200 && response.bodyText.trimmingCharacters(in: .whitespacesAndNewlines) == "success"
        } catch let error as CurlError {
            record.error = error.message
        } catch {
            record.error = "\(error)"
        }
        let accepted = record.accepted
        state.withLock { $0.record(record) }
        logger.info("callback sent", metadata: ["mrn": "\(order.mrn)", "attempt": "\(attempt)", "accepted": "\(accepted)", "status": "\(record.status.map(String.init) ?? record.error ?? "-")"])
        return accepted
    }

    /// RFC 3339 in UTC with milliseconds: the logs' times must tell apart requests less than a second apart (two
    /// replicas querying one order, say).
    static func now() -> String {
        Date().formatted(Date.ISO8601FormatStyle(includingFractionalSeconds: true))
    }
}
