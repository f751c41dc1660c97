import CurlHTTP
import Foundation
import TestSupport
import Testing

/// The built `gateway-sim` next to the test bundle (or `GATEWAY_SIM_BINARY`).
func gatewaySimBinary() -> URL {
    if let path = ProcessInfo.processInfo.environment["GATEWAY_SIM_BINARY"] { return URL(fileURLWithPath: path) }
    return repositoryRoot.appendingPathComponent(".build/debug/gateway-sim")
}

struct RunResult {
    var status: Int32
    var output: String
}

/// Runs the simulator to completion; its standard output and error together.
func runToEnd(_ arguments: [String], environment: [String: String] = [:]) throws -> RunResult {
    let run = try ChildProcess.capture(gatewaySimBinary().path, arguments, environment: environment)
    guard case .exited(let status) = run.termination else { throw ChildProcessError("gateway-sim ended with \(run.termination)") }
    return RunResult(status: status, output: run.stdout + run.stderr)
}

@Suite("gateway-sim executable")
struct ExecutableTests {
    @Test("a malformed setting stops start-up with one line naming it, exit code 2", arguments: [
        (["--listen", "nonsense"], [String: String](), "GATEWAY_SIM_LISTEN"),
        ([], ["GATEWAY_SIM_LISTEN": "127.0.0.1:99999"], "GATEWAY_SIM_LISTEN"),
        ([], ["GATEWAY_SIM_BALANCE": "-5"], "GATEWAY_SIM_BALANCE"),
        (["--auto-settle", "soon"], [:], "GATEWAY_SIM_AUTO_SETTLE"),
        ([], ["GATEWAY_SIM_SECRET_KEY_FILE": "/nonexistent/secret"], "GATEWAY_SIM_SECRET_KEY_FILE"),
        ([], ["GATEWAY_SIM_LOG_LEVEL": "loud"], "GATEWAY_SIM_LOG_LEVEL"),
        ([], ["GATEWAY_SIM_CALLBACK_RETRY": "1s,,2s"], "GATEWAY_SIM_CALLBACK_RETRY"),
        (["--log-limit", "0"], [:], "GATEWAY_SIM_LOG_LIMIT"),
    ])
    func badSettings(arguments: [String], environment: [String: String], setting: String) throws {
        let result = try runToEnd(arguments, environment: environment)
        #expect(result.status == 2)
        let lines = result.output.split(separator: "\n")
        #expect(lines.count == 1, "\(result.output)")
        #expect(lines.first?.hasPrefix("gateway-sim: \(setting):") == true, "\(result.output)")
    }

    @Test("--help documents every flag with its environment variable")
    func help() throws {
        let result = try runToEnd(["--help"])
        #expect(result.status == 0)
        for name in ["GATEWAY_SIM_LISTEN", "GATEWAY_SIM_APP_KEY", "GATEWAY_SIM_SECRET_KEY", "GATEWAY_SIM_BALANCE", "--auto-settle"] {
            #expect(result.output.contains(name), "\(name)")
        }
    }

    @Test("serves on the address given, with the secret from a file (flag beats env), and exits 0 on SIGTERM")
    func servesAndStops() async throws {
        let port = try await uniqueTestPort()
        let secretFile = FileManager.default.temporaryDirectory.appendingPathComponent("sim-secret-\(port)")
        try "  file-secret \n".write(to: secretFile, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: secretFile) }
        let process = try ChildProcess(gatewaySimBinary().path, ["--listen", "127.0.0.1:\(port)", "--app-key", "flag_app"],
                                       environment: ["GATEWAY_SIM_APP_KEY": "env_app", "GATEWAY_SIM_SECRET_KEY_FILE": secretFile.path])
        defer { process.terminate() }
        var configuration = CurlClient.Configuration()
        configuration.proxy = .none
        try await CurlClient.withClient(configuration: configuration) { client in
            let base = "http://127.0.0.1:\(port)"
            #expect(await eventually { (try? await client.execute(CurlRequest(url: base + "/healthz")))?.status == 200 })
            let sign = independentSign([("appKey", "flag_app"), ("mrn", "nope")], secret: "file-secret")
            let answer = try await client.execute(CurlRequest(url: "\(base)/api/Payouts/Query?appKey=flag_app&mrn=nope&sign=\(sign)"))
            #expect(answer.bodyText.contains("object_not_found"), "signature accepted with the trimmed file secret and the flag's appKey")
        }
        process.terminate()
        #expect(process.wait() == .exited(0))
    }
}
