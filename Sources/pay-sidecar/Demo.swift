import ArgumentParser
import ConfigurationValues
import GatewayProtocol
import GatewaySimulator
import Logging
import ServiceLifecycle
import Sidecar
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import UnixSignals
import Webhooks

#if canImport(Glibc)
import Glibc
#endif

/// `pay-sidecar demo`: the simulator and the sidecar wired to it, in one process on loopback.
struct Demo: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run the gateway simulator and the sidecar wired to it on loopback, and print commands to try.",
        discussion: "Nothing leaves the machine. The merchant secret is made up for this run. Stop with Ctrl-C."
    )

    @Option(help: "Where the simulated gateway listens.") var gatewayListen: String = "127.0.0.1:9090"
    @Option(help: "Where the sidecar's internal API listens.") var listen: String = "127.0.0.1:8080"
    @Option(help: "Where the sidecar's callback listener listens.") var callbackListen: String = "127.0.0.1:8081"
    @Option(help: "Where the demo's webhook receiver listens.") var receiverListen: String = "127.0.0.1:8082"
    @Option(help: "trace, debug, info, notice, warning, error or critical.") var logLevel: String = "info"

    func run() async throws {
        guard let gatewayAddress = ListenAddress(gatewayListen) else { throw failStartup("--gateway-listen: '\(gatewayListen)' is not host:port") }
        guard let level = Logger.Level(rawValue: logLevel) else { throw failStartup("--log-level: '\(logLevel)' is not a log level") }
        guard let receiverAddress = ListenAddress(receiverListen) else { throw failStartup("--receiver-listen: '\(receiverListen)' is not host:port") }
        let (webhookSecret, webhookSecretText) = WebhookSecret.generate()
        let appKey = "demo_merchant"
        let secret = Self.randomHex(16)
        let folder = Self.temporaryFolder()
        let flags: [String: String] = [
            Setting.gatewayURL.variable: "http://\(gatewayAddress)",
            Setting.appKey.variable: appKey,
            Setting.secretKey.variable: secret,
            Setting.publicURL.variable: "http://\(callbackListen.hasPrefix(":") ? "127.0.0.1" + callbackListen : callbackListen)",
            Setting.listen.variable: listen,
            Setting.callbackListen.variable: callbackListen,
            Setting.databaseURL.variable: "sqlite://\(folder)/pay-sidecar.db",
            Setting.logFormat.variable: "text",
            Setting.webhookURL.variable: "http://\(receiverAddress)/webhooks",
            Setting.webhookSecret.variable: webhookSecretText,
            Setting.webhookRetrySchedule.variable: "1s,5s,30s,2m",
            Setting.logLevel.variable: logLevel,
        ]
        let configuration: SidecarConfiguration
        do {
            configuration = try SidecarConfiguration.load(flags: flags, environment: [:])
        } catch {
            throw failStartup(error.description)
        }
        LoggingSystem.bootstrapSidecar(format: .text, level: level)
        let logger = Logger(label: "pay-sidecar")
        var simulatorConfiguration = SimulatorConfiguration(appKey: appKey, secretKey: MerchantSecret(secret))
        simulatorConfiguration.host = gatewayAddress.host
        simulatorConfiguration.port = gatewayAddress.port
        let simulator = try GatewaySimulator(configuration: simulatorConfiguration, logger: Logger(label: "gateway-sim"))
        let server: SidecarServer
        do {
            server = try await SidecarServer(configuration: configuration, logger: logger)
        } catch let error as ConfigurationError {
            throw failStartup(error.description)
        }
        let receiver = DemoWebhookReceiver(address: receiverAddress, verifier: WebhookVerifier(secret: webhookSecret), logger: logger)
        let group = ServiceGroup(configuration: .init(services: [simulator, receiver] + server.services, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            tasks.addTask {
                let ports = try await server.boundPorts()
                let gateway = await simulator.baseURL()
                Self.printBanner(api: "http://\(configuration.listen.host):\(ports.internalAPI)", gateway: gateway, folder: folder)
            }
            try await tasks.waitForAll()
        }
    }

    static func printBanner(api: String, gateway: String, folder: String) {
        let stamp = randomHex(4)
        print("""

            pay-sidecar demo is running (Ctrl-C to stop)
              internal API        \(api)        (what your services call)
              simulated gateway   \(gateway)   (cashier pages, control API under /_sim/)
              webhook receiver    (prints every verified webhook below)
              state folder        \(folder)

            Try, in another terminal:

              # a deposit in web API mode: open the payUrl it returns in a browser and press Pay;
              # the callback reaches the sidecar and a verified deposit.succeeded webhook is printed here
              curl -s \(api)/v1/deposits -H 'Content-Type: application/json' \\
                -d '{"mrn":"D-\(stamp)-1","amount":"100.50","channelId":2,"returnUrl":"https://shop.example/return"}'

              # a deposit in page mode: the signed form and a self-submitting page for the browser
              curl -s \(api)/v1/deposits -H 'Content-Type: application/json' \\
                -d '{"mrn":"D-\(stamp)-2","amount":88,"channelId":1,"returnUrl":"https://shop.example/return","payer":"张三","mode":"page"}'

              # a payout, then settle it on the simulator and query it
              curl -s \(api)/v1/payouts -H 'Content-Type: application/json' \\
                -d '{"mrn":"P-\(stamp)-1","amount":500,"bankName":"中国工商银行","accountName":"张三","accountNumber":"6222020200112233445"}'
              curl -s -X POST \(gateway)/_sim/payouts/P-\(stamp)-1/complete
              curl -s \(api)/v1/payouts/P-\(stamp)-1

              # query the deposit; list the webhooks the sidecar emitted
              curl -s \(api)/v1/deposits/D-\(stamp)-1
              curl -s '\(api)/v1/events?limit=10'
              curl -s \(api)/v1/channels
              curl -s \(api)/openapi.json

            """)
        flushStandardOutput()
    }

    static func randomHex(_ bytes: Int) -> String {
        var rng = SystemRandomNumberGenerator()
        let hex = Array("0123456789abcdef")
        return String((0..<(bytes * 2)).map { _ in hex[Int(rng.next() as UInt64 % 16)] })
    }

    static func temporaryFolder() -> String {
        var template = Array("/tmp/pay-sidecar-demo-XXXXXX".utf8CString)
        return template.withUnsafeMutableBufferPointer { buffer in
            guard let base = buffer.baseAddress, let result = mkdtemp(base) else { return "/tmp" }
            return String(cString: result)
        }
    }
}

/// The demo's internal service: receives the sidecar's webhooks, verifies them, prints them.
struct DemoWebhookReceiver: Service {
    let address: ListenAddress
    let verifier: WebhookVerifier
    let logger: Logger

    func run() async throws {
        let router = Router()
        let verifier = self.verifier
        router.post("/webhooks") { request, _ -> Response in
            let body = Array(try await request.body.collect(upTo: 1 << 20).readableBytesView)
            let headers = request.headers
            do {
                try verifier.verify(
                    id: headers[HTTPField.Name("webhook-id")!], timestamp: headers[HTTPField.Name("webhook-timestamp")!],
                    signatures: headers[HTTPField.Name("webhook-signature")!], body: body, now: Int64(Date().timeIntervalSince1970)
                )
            } catch {
                print("✘ webhook refused (\(error)): \(String(decoding: body, as: UTF8.self))")
                flushStandardOutput()
                return Response(status: .unauthorized)
            }
            print("✔ verified webhook \(headers[HTTPField.Name("webhook-id")!] ?? ""): \(String(decoding: body, as: UTF8.self))")
            flushStandardOutput()
            return Response(status: .noContent)
        }
        let app = Application(router: router, configuration: .init(address: .hostname(address.host, port: address.port), serverName: nil), logger: Logger(label: "demo-receiver"))
        try await app.runService(gracefulShutdownSignals: [])
    }
}

/// Writes out what `print` buffered. When standard output is a pipe or a file (`make demo | tee`, container
/// logs) the C library holds it back until its buffer fills; the demo's commands must show at once.
func flushStandardOutput() {
    fflush(nil)
}
