import CurlHTTP
import Foundation
import GatewayProtocol
import Hummingbird
import Logging
import TestSupport
import Testing

@testable import Sidecar

@Suite("OpenAPI document")
struct OpenAPITests {
    @Test("the served routes and the document list the same operations")
    func parity() async throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("openapi-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let configuration = try load(env: required.merging(["PAYSIDECAR_DATABASE_URL": "sqlite://\(folder.path)/l.db"]) { $1 })
        let server = try await SidecarServer(configuration: configuration, logger: Logger(label: "test"))
        let gateway = GatewayClient(http: server.http, baseURL: configuration.gatewayURL, secrets: server.secrets, timeout: .seconds(1))
        let router = SidecarServer.internalRouter(configuration: configuration, secrets: server.secrets, gateway: gateway, ledger: server.ledger,
                                                  desk: server.desk, dispatcher: server.dispatcher, metrics: server.metrics, logger: Logger(label: "test"))
        let served = Set(router.routes.map { route -> String in
            let path = route.path.description.split(separator: "/").map { $0.hasPrefix(":") ? "{\($0.dropFirst())}" : String($0) }.joined(separator: "/")
            return "\(route.method.rawValue) /\(path)"
        })
        let document = try #require(try JSONSerialization.jsonObject(with: Data(OpenAPIDocument.bytes)) as? [String: Any])
        #expect(document["openapi"] as? String == "3.1.0")
        #expect((document["info"] as? [String: Any])?["version"] as? String == SidecarBuild.version, "the document's version is the build's")
        let paths = try #require(document["paths"] as? [String: [String: Any]])
        let documented = Set(paths.flatMap { path, operations in operations.keys.map { "\($0.uppercased()) \(path)" } })
        #expect(served == documented, "served only: \(served.subtracting(documented)); documented only: \(documented.subtracting(served))")
        #expect(served.count >= 8)
    }

    @Test("/openapi.json serves the document kept in the repository, with examples")
    func served() async throws {
        try await withSidecar { (e2e: E2E) async throws in
            let response = try await e2e.get("/openapi.json")
            #expect(response.status == 200)
            let file = repositoryRoot.appendingPathComponent("Sources/Sidecar/openapi.json")
            #expect(response.body == Array(try Data(contentsOf: file)))
            #expect(response.bodyText.contains("\"examples\""))
            #expect(response.bodyText.contains("orderStatus"))
        }
    }
}
