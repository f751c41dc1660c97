import Foundation
import TestSupport
import Testing

@Suite("Build files")
struct BuildFilesTests {
    @Test("the ThreadSanitizer package builds the main package's own sources, with its dependency versions and settings")
    func tsanPackage() throws {
        let tsan = repositoryRoot.appendingPathComponent("Tests/TSan")
        for (link, target) in [("Sources/CCurl", "Sources/CCurl"), ("Sources/CurlHTTP", "Sources/CurlHTTP"),
                               ("Tests/CurlHTTPTests", "Tests/CurlHTTPTests"), ("Tests/TestSupport", "Tests/TestSupport")] {
            let resolved = tsan.appendingPathComponent(link).resolvingSymlinksInPath().path
            #expect(resolved == repositoryRoot.appendingPathComponent(target).resolvingSymlinksInPath().path, "\(link) -> \(resolved)")
        }
        let main = try String(contentsOf: repositoryRoot.appendingPathComponent("Package.swift"), encoding: .utf8)
        let mainLines = Set(main.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) })
        let manifest = try String(contentsOf: tsan.appendingPathComponent("Package.swift"), encoding: .utf8)
        let shared = manifest.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }
            .filter { $0.hasPrefix(".package(") || $0.hasPrefix(".enableUpcomingFeature(") || $0.hasPrefix("// swift-tools-version") }
        #expect(shared.count == 7)
        for line in shared { #expect(mainLines.contains(line), "not in the main Package.swift: \(line)") }
    }

    @Test("the trace exporter's trait: off by default and for make demo; on for make test, CI's build and the container image, the same traits each")
    func traceExporterTrait() throws {
        func file(_ path: String) throws -> String { try String(contentsOf: repositoryRoot.appendingPathComponent(path), encoding: .utf8) }
        let makefile = try file("Makefile")
        #expect(makefile.contains("TEST_TRAITS ?= --traits OpenTelemetry"))
        #expect(makefile.contains("$(SWIFT) test $(TEST_TRAITS)"), "make test builds with the trait")
        let demo = makefile.components(separatedBy: "\ndemo:").last?.components(separatedBy: "\n\n").first ?? ""
        #expect(demo.contains("$(SWIFT) build") && !demo.contains("--traits") && !demo.contains("TEST_TRAITS"), "make demo leaves the exporter out")
        #expect(try file(".ci/run").contains("swift build --build-tests $traits"), "CI's build uses make test's traits")
        let dockerfile = try file("Dockerfile")
        #expect(dockerfile.contains("--traits OpenTelemetry --product pay-sidecar") && dockerfile.contains("--traits OpenTelemetry --product gateway-sim"))
        #expect(try file("scripts/check-runtime-image.sh").contains("$traits --product pay-sidecar"), "the runtime check builds as the Dockerfile does")
        let manifest = try file("Package.swift")
        #expect(manifest.contains(#".trait(name: "OpenTelemetry""#) && !manifest.contains(".default(enabledTraits"), "not a default trait")
        #expect(manifest.contains(#"condition: .when(traits: ["OpenTelemetry"])"#))
    }
}
