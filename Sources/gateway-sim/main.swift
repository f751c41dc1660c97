import ArgumentParser
import ConfigurationValues
import GatewayProtocol
import GatewaySimulator
import Logging
import ServiceLifecycle
import UnixSignals

#if canImport(Glibc)
import Glibc
#endif

/// `gateway-sim`: the gateway simulator alone. Every flag also reads an environment variable; a flag wins.
@main
struct GatewaySimCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gateway-sim",
        abstract: "A faithful, stateful stand-in for the payment gateway, for tests and demos.",
        discussion: """
            Serves /api/Pay, /api/Pay/Create, /api/Payments/Query, /api/Payouts/Create and /api/Payouts/Query,
            checks every signature, keeps orders and a merchant balance, sends signed callbacks with retries,
            and offers a control API under /_sim/ (see the README). Stop it with Ctrl-C or SIGTERM.
            """
    )

    @Option(help: "Address to listen on, host:port. [env: GATEWAY_SIM_LISTEN] (default: 127.0.0.1:9090)")
    var listen: String?

    @Option(help: "The merchant appKey the simulator accepts. [env: GATEWAY_SIM_APP_KEY] (default: sim_app_key)")
    var appKey: String?

    @Option(help: "The merchant signing secret. [env: GATEWAY_SIM_SECRET_KEY or GATEWAY_SIM_SECRET_KEY_FILE] (default: sim_secret_key)")
    var secretKey: String?

    @Option(help: "Starting merchant balance in yuan. [env: GATEWAY_SIM_BALANCE] (default: 1000000)")
    var balance: String?

    @Option(help: "Settle every new order as paid after this delay, e.g. 3s. [env: GATEWAY_SIM_AUTO_SETTLE] (default: off)")
    var autoSettle: String?

    @Option(help: "Delays between callback attempts, e.g. 1s,2s,5s. [env: GATEWAY_SIM_CALLBACK_RETRY] (default: 1s,2s,5s,15s,30s,1m,5m)")
    var callbackRetry: String?

    @Option(help: "trace, debug, info, notice, warning, error or critical. [env: GATEWAY_SIM_LOG_LEVEL] (default: info)")
    var logLevel: String?

    @Option(help: "How many requests and callback attempts /_sim/requests and /_sim/callbacks keep. [env: GATEWAY_SIM_LOG_LIMIT] (default: 10000)")
    var logLimit: String?

    func run() async throws {
        let env = ProcessEnvironment.read()
        let configuration: SimulatorConfiguration
        let level: Logger.Level
        do {
            (configuration, level) = try makeConfiguration(env)
        } catch let error as SettingError {
            print("gateway-sim: \(error.setting): \(error.message)")
            throw ExitCode(2)
        }
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardOutput(label: label)
            handler.logLevel = level
            return handler
        }
        let logger = Logger(label: "gateway-sim")
        let simulator = try GatewaySimulator(configuration: configuration, logger: logger)
        let group = ServiceGroup(
            configuration: .init(services: [simulator], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
        )
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            tasks.addTask {
                let url = await simulator.baseURL()
                logger.info("gateway-sim listening on \(url) (appKey \(configuration.appKey))")
            }
            try await tasks.waitForAll()
        }
    }

    struct SettingError: Error {
        var setting: String
        var message: String
    }

    func makeConfiguration(_ env: [String: String]) throws -> (SimulatorConfiguration, Logger.Level) {
        func value(_ flag: String?, _ name: String) -> String? {
            if let flag { return flag }
            if let v = env[name] { return v }
            return nil
        }
        var secret = value(secretKey, "GATEWAY_SIM_SECRET_KEY")
        if secret == nil, let path = env["GATEWAY_SIM_SECRET_KEY_FILE"] {
            guard let text = ProcessEnvironment.readTrimmedFile(path) else {
                throw SettingError(setting: "GATEWAY_SIM_SECRET_KEY_FILE", message: "cannot read \(path)")
            }
            secret = text
        }
        let appKey = value(appKey, "GATEWAY_SIM_APP_KEY") ?? "sim_app_key"
        guard !appKey.isEmpty else { throw SettingError(setting: "GATEWAY_SIM_APP_KEY", message: "must not be empty") }
        let secretText = secret ?? "sim_secret_key"
        guard !secretText.isEmpty else { throw SettingError(setting: "GATEWAY_SIM_SECRET_KEY", message: "must not be empty") }
        var configuration = SimulatorConfiguration(appKey: appKey, secretKey: MerchantSecret(secretText))

        let listenText = value(listen, "GATEWAY_SIM_LISTEN") ?? "127.0.0.1:9090"
        guard let address = ListenAddress(listenText) else {
            throw SettingError(setting: "GATEWAY_SIM_LISTEN", message: "'\(listenText)' is not host:port (e.g. 127.0.0.1:9090)")
        }
        configuration.host = address.host
        configuration.port = address.port

        if let text = value(balance, "GATEWAY_SIM_BALANCE") {
            guard let fen = AmountText.parse(text, maxDecimals: 2, strict: false) else {
                throw SettingError(setting: "GATEWAY_SIM_BALANCE", message: "'\(text)' is not an amount in yuan (e.g. 1000000)")
            }
            configuration.balanceFen = fen
        }
        if let text = value(autoSettle, "GATEWAY_SIM_AUTO_SETTLE"), !text.isEmpty {
            guard let delay = DurationText.parse(text) else {
                throw SettingError(setting: "GATEWAY_SIM_AUTO_SETTLE", message: "'\(text)' is not a duration (e.g. 500ms, 3s, 1m)")
            }
            configuration.autoSettle = delay
        }
        if let text = value(callbackRetry, "GATEWAY_SIM_CALLBACK_RETRY") {
            guard let schedule = DurationText.parseList(text) else {
                throw SettingError(setting: "GATEWAY_SIM_CALLBACK_RETRY", message: "'\(text)' is not a comma-separated list of durations")
            }
            configuration.callbackRetrySchedule = schedule
        }
        if let text = value(logLimit, "GATEWAY_SIM_LOG_LIMIT") {
            guard let limit = Int(text), limit > 0 else {
                throw SettingError(setting: "GATEWAY_SIM_LOG_LIMIT", message: "'\(text)' is not a positive whole number")
            }
            configuration.logLimit = limit
        }
        let levelText = value(logLevel, "GATEWAY_SIM_LOG_LEVEL") ?? "info"
        guard let level = Logger.Level(rawValue: levelText.lowercased()) else {
            throw SettingError(setting: "GATEWAY_SIM_LOG_LEVEL", message: "'\(levelText)' is not one of trace, debug, info, notice, warning, error, critical")
        }
        return (configuration, level)
    }
}
