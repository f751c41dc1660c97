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
}
