// swift-tools-version:6.1
// The microbenchmarks, in a package of their own so the main build stays lean.
// Run: cd Benchmarks && swift package benchmark      (see Benchmarks/README.md)
import PackageDescription

let package = Package(
    name: "pay-sidecar-benchmarks",
    platforms: [.macOS(.v15)],
    dependencies: [
        // With the traits `make test` and CI build the main package with (the Makefile's TEST_TRAITS): CI builds this
        // package in the main build folder, and the same traits keep the main package's modules from being rebuilt.
        .package(name: "pay-sidecar", path: "..", traits: ["OpenTelemetry"]),
        // Only the malloc interposer trait: the runtime interposer's package is not needed (nor available offline).
        .package(url: "https://github.com/ordo-one/benchmark.git", from: "1.38.1", traits: ["MallocInterposer"]),
    ],
    targets: [
        .executableTarget(
            name: "SidecarBenchmarks",
            dependencies: [
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "GatewayProtocol", package: "pay-sidecar"),
                .product(name: "Webhooks", package: "pay-sidecar"),
                .product(name: "Sidecar", package: "pay-sidecar"),
            ],
            path: "Benchmarks/SidecarBenchmarks",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
    ]
)
