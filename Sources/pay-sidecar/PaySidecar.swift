import ArgumentParser
import ConfigurationValues
import GatewayProtocol
import GatewaySimulator
import Logging
import Metrics
import Prometheus
import ServiceLifecycle
import Sidecar
import UnixSignals

#if canImport(Glibc)
import Glibc
#endif

@main
struct PaySidecar: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pay-sidecar",
        abstract: "Signs and forwards payment calls to the gateway; turns its callbacks into signed webhooks.",
        discussion: """
            Internal services call the internal API (PAYSIDECAR_LISTEN) with plain JSON; the sidecar validates,
            injects the appKey, signs with the secret only it holds, and forwards to the gateway. The gateway's
            callbacks arrive on a separate listener (PAYSIDECAR_CALLBACK_LISTEN).
            Every option also reads its environment variable; a flag wins. Secrets also read <NAME>_FILE.
            """,
        version: SidecarBuild.description,
        subcommands: [Serve.self, Demo.self, Sign.self, VerifyCallback.self, Events.self, Secrets.self, HealthCheck.self, MigrateLedger.self],
        defaultSubcommand: Serve.self
    )
}

/// Prints one line to standard error and exits with code 2: the start-up failure contract.
func failStartup(_ message: String) -> ExitCode {
    var line = "pay-sidecar: \(message)\n"
    line.withUTF8 { buffer in _ = write(2, buffer.baseAddress, buffer.count) }
    return ExitCode(2)
}

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Run the sidecar (the default command).")

    @OptionGroup var settings: SettingOptions

    func run() async throws {
        let configuration: SidecarConfiguration
        let environment = ProcessEnvironment.read()
        do {
            configuration = try SidecarConfiguration.load(flags: settings.flagValues, environment: environment)
        } catch {
            throw failStartup(error.description)
        }
        // Traces only when an OTLP endpoint is named and the exporter is built in; otherwise nothing of it runs.
        let tracesRequested = TraceExport.requested(by: environment)
        let exporting = tracesRequested != nil && TraceExport.isBuiltIn
        if exporting {
            do { try TraceExport.validate(environment) } catch { throw failStartup(error.description) }
        }
        LoggingSystem.bootstrapSidecar(format: configuration.logFormat, level: configuration.logLevel,
                                       metadataProvider: exporting ? TraceExport.loggingMetadataProvider : nil)
        let logger = Logger(label: "pay-sidecar")
        for flag in settings.secretFlagsGiven {
            logger.warning("a secret was given on the command line: any user of this machine can read it in the process list; use the _FILE form",
                           metadata: ["flag": "\(flag)"])
        }
        let traceExporter: (any Service)?
        if let variable = tracesRequested, exporting {
            do {
                traceExporter = try TraceExport.bootstrap(environment: environment, logger: logger)
            } catch {
                throw failStartup("\(variable): the trace exporter could not be set up: \(error)")
            }
        } else {
            traceExporter = nil
            if let variable = tracesRequested {
                logger.warning("traces are not exported: this build has no trace exporter (build with --traits OpenTelemetry)", metadata: ["variable": "\(variable)"])
            }
        }
        let tracing = traceExporter != nil
        let server: SidecarServer
        do {
            server = try await SidecarServer(configuration: configuration, logger: logger, tracing: tracing)
        } catch let error as ConfigurationError {
            throw failStartup(error.description)
        }
        // Metrics that dependencies emit through swift-metrics land on the same /metrics.
        MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: server.metrics.registry))
        // The exporter first: stopped last, it sends the spans of the requests that finished during shutdown.
        let services = (traceExporter.map { [$0] } ?? []) + server.services
        let group = ServiceGroup(configuration: .init(services: services, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        // SIGHUP reloads the secrets from their *_FILEs (rotation without a restart).
        let hangups = await UnixSignalsSequence(trapping: .sighup)
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask {
                for await _ in hangups { server.reloadSecrets(trigger: "SIGHUP") }
            }
            tasks.addTask {
                let ports = try await server.boundPorts()
                logger.info("pay-sidecar started", metadata: [
                    "version": "\(SidecarBuild.version)",
                    "internal_api": "\(configuration.listen.host):\(ports.internalAPI)",
                    "callback_listener": "\(configuration.callbackListen.host):\(ports.callback)",
                    "gateway": "\(URLText.redacted(configuration.gatewayURL))",
                    "public_url": "\(URLText.redacted(configuration.publicURL))",
                    "database": "\(configuration.database)",
                    "api_token": "\(configuration.apiToken == nil ? "off" : "on")",
                    "webhook_url": "\(configuration.webhookURL.map(URLText.redacted) ?? "-")",
                    "secret_files_watched": "\(configuration.secretFiles.count)",
                    "traces": "\(tracing ? "otlp" : "off")",
                ])
            }
            // Runs until SIGTERM/SIGINT (or a failure); then stop listening for SIGHUP.
            defer { tasks.cancelAll() }
            try await group.run()
        }
    }
}

/// Every setting of contract section 2 as a flag. The names come from `Setting`; a test checks they match.
struct SettingOptions: ParsableArguments {
    @Option(name: .customLong("gateway-url"), help: help(.gatewayURL)) var gatewayURL: String?
    @Option(name: .customLong("app-key"), help: help(.appKey)) var appKey: String?
    @Option(name: .customLong("secret-key"), help: help(.secretKey)) var secretKey: String?
    @Option(name: .customLong("secret-key-file"), help: fileHelp(.secretKey)) var secretKeyFile: String?
    @Option(name: .customLong("public-url"), help: help(.publicURL)) var publicURL: String?
    @Option(name: .customLong("listen"), help: help(.listen)) var listen: String?
    @Option(name: .customLong("callback-listen"), help: help(.callbackListen)) var callbackListen: String?
    @Option(name: .customLong("api-token"), help: help(.apiToken)) var apiToken: String?
    @Option(name: .customLong("api-token-file"), help: fileHelp(.apiToken)) var apiTokenFile: String?
    @Option(name: .customLong("webhook-url"), help: help(.webhookURL)) var webhookURL: String?
    @Option(name: .customLong("webhook-secret"), help: help(.webhookSecret)) var webhookSecret: String?
    @Option(name: .customLong("webhook-secret-file"), help: fileHelp(.webhookSecret)) var webhookSecretFile: String?
    @Option(name: .customLong("webhook-endpoints-file"), help: help(.webhookEndpointsFile)) var webhookEndpointsFile: String?
    @Option(name: .customLong("endpoint-disable-after"), help: help(.endpointDisableAfter)) var endpointDisableAfter: String?
    @Option(name: .customLong("webhook-retry-schedule"), help: help(.webhookRetrySchedule)) var webhookRetrySchedule: String?
    @Option(name: .customLong("webhook-timeout"), help: help(.webhookTimeout)) var webhookTimeout: String?
    @Option(name: .customLong("webhook-lease"), help: help(.webhookLease)) var webhookLease: String?
    @Option(name: .customLong("database-url"), help: help(.databaseURL)) var databaseURL: String?
    @Option(name: .customLong("database-password"), help: help(.databasePassword)) var databasePassword: String?
    @Option(name: .customLong("database-password-file"), help: fileHelp(.databasePassword)) var databasePasswordFile: String?
    @Option(name: .customLong("database-pool-size"), help: help(.databasePoolSize)) var databasePoolSize: String?
    @Option(name: .customLong("database-timeout"), help: help(.databaseTimeout)) var databaseTimeout: String?
    @Option(name: .customLong("callback-allowed-ips"), help: help(.callbackAllowedIPs)) var callbackAllowedIPs: String?
    @Option(name: .customLong("trusted-proxies"), help: help(.trustedProxies)) var trustedProxies: String?
    @Option(name: .customLong("gateway-timeout"), help: help(.gatewayTimeout)) var gatewayTimeout: String?
    @Option(name: .customLong("reconcile-after"), help: help(.reconcileAfter)) var reconcileAfter: String?
    @Option(name: .customLong("reconcile-horizon"), help: help(.reconcileHorizon)) var reconcileHorizon: String?
    @Option(name: .customLong("resend-after"), help: help(.resendAfter)) var resendAfter: String?
    @Option(name: .customLong("journal-retention"), help: help(.journalRetention)) var journalRetention: String?
    @Option(name: .customLong("tombstone-retention"), help: help(.tombstoneRetention)) var tombstoneRetention: String?
    @Option(name: .customLong("event-retention"), help: help(.eventRetention)) var eventRetention: String?
    @Option(name: .customLong("unknown-order-callbacks"), help: help(.unknownOrderCallbacks)) var unknownOrderCallbacks: String?
    @Option(name: .customLong("secret-grace-period"), help: help(.secretGracePeriod)) var secretGracePeriod: String?
    @Option(name: .customLong("header-timeout"), help: help(.headerTimeout)) var headerTimeout: String?
    @Option(name: .customLong("idle-timeout"), help: help(.idleTimeout)) var idleTimeout: String?
    @Option(name: .customLong("max-connections"), help: help(.maxConnections)) var maxConnections: String?
    @Option(name: .customLong("allow-unauthenticated-api"), help: help(.allowUnauthenticatedAPI)) var allowUnauthenticatedAPI: String?
    @Option(name: .customLong("log-level"), help: help(.logLevel)) var logLevel: String?
    @Option(name: .customLong("log-format"), help: help(.logFormat)) var logFormat: String?

    static func help(_ setting: Setting) -> ArgumentHelp {
        let visible = setting.isSecret ? " Visible to every user in the process list: prefer \(setting.fileFlag!) or \(setting.fileVariable!)." : ""
        return ArgumentHelp("\(setting.help) [env: \(setting.variable)]\(setting.defaultValue.map { " (default: \($0))" } ?? "").\(visible)")
    }

    static func fileHelp(_ setting: Setting) -> ArgumentHelp {
        ArgumentHelp("Read \(setting.flag.dropFirst(2)) from this file, trimmed [env: \(setting.fileVariable!)]")
    }

    /// The secret flags given with their value on the command line (`--secret-key`, ...), which `ps` shows to
    /// every user of the machine.
    var secretFlagsGiven: [String] {
        [(Setting.secretKey, secretKey), (Setting.apiToken, apiToken), (Setting.webhookSecret, webhookSecret), (Setting.databasePassword, databasePassword)]
            .compactMap { $0.1 == nil ? nil : $0.0.flag }
    }

    /// The given flags keyed by variable name.
    var flagValues: [String: String] {
        let pairs: [(String, String?)] = [
            (Setting.gatewayURL.variable, gatewayURL), (Setting.appKey.variable, appKey),
            (Setting.secretKey.variable, secretKey), (Setting.secretKey.fileVariable!, secretKeyFile),
            (Setting.publicURL.variable, publicURL), (Setting.listen.variable, listen),
            (Setting.callbackListen.variable, callbackListen), (Setting.apiToken.variable, apiToken),
            (Setting.apiToken.fileVariable!, apiTokenFile), (Setting.webhookURL.variable, webhookURL),
            (Setting.webhookSecret.variable, webhookSecret), (Setting.webhookSecret.fileVariable!, webhookSecretFile),
            (Setting.webhookEndpointsFile.variable, webhookEndpointsFile), (Setting.endpointDisableAfter.variable, endpointDisableAfter),
            (Setting.webhookRetrySchedule.variable, webhookRetrySchedule), (Setting.webhookTimeout.variable, webhookTimeout),
            (Setting.webhookLease.variable, webhookLease),
            (Setting.databaseURL.variable, databaseURL), (Setting.databasePassword.variable, databasePassword),
            (Setting.databasePassword.fileVariable!, databasePasswordFile), (Setting.databasePoolSize.variable, databasePoolSize),
            (Setting.databaseTimeout.variable, databaseTimeout), (Setting.callbackAllowedIPs.variable, callbackAllowedIPs),
            (Setting.trustedProxies.variable, trustedProxies),
            (Setting.gatewayTimeout.variable, gatewayTimeout), (Setting.reconcileAfter.variable, reconcileAfter),
            (Setting.reconcileHorizon.variable, reconcileHorizon), (Setting.resendAfter.variable, resendAfter),
            (Setting.journalRetention.variable, journalRetention), (Setting.tombstoneRetention.variable, tombstoneRetention),
            (Setting.eventRetention.variable, eventRetention),
            (Setting.unknownOrderCallbacks.variable, unknownOrderCallbacks), (Setting.secretGracePeriod.variable, secretGracePeriod),
            (Setting.headerTimeout.variable, headerTimeout), (Setting.idleTimeout.variable, idleTimeout),
            (Setting.maxConnections.variable, maxConnections), (Setting.allowUnauthenticatedAPI.variable, allowUnauthenticatedAPI),
            (Setting.logLevel.variable, logLevel), (Setting.logFormat.variable, logFormat),
        ]
        var result: [String: String] = [:]
        for (name, value) in pairs { if let value { result[name] = value } }
        return result
    }
}
