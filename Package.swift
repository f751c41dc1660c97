// swift-tools-version:6.2
import PackageDescription

let swiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
]

let package = Package(
    name: "pay-sidecar",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "pay-sidecar", targets: ["pay-sidecar"]),
        .executable(name: "gateway-sim", targets: ["gateway-sim"]),
        .library(name: "GatewayProtocol", targets: ["GatewayProtocol"]),
        .library(name: "CurlHTTP", targets: ["CurlHTTP"]),
        .library(name: "GatewaySimulator", targets: ["GatewaySimulator"]),
        // For the benchmark package in Benchmarks/.
        .library(name: "Webhooks", targets: ["Webhooks"]),
        .library(name: "Sidecar", targets: ["Sidecar"]),
        .library(name: "Orders", targets: ["Orders"]),
    ],
    // OpenTelemetry's exporter (swift-otel, with AsyncHTTPClient, SwiftNIO SSL and SwiftProtobuf behind it) adds
    // minutes to a first build, so it is a trait: `make demo` and a plain `swift build` leave it out; the tests, CI
    // and the container image build with it (`--traits OpenTelemetry`). The spans themselves are always compiled
    // (swift-distributed-tracing); only the exporter's bootstrap needs the trait.
    traits: [
        .trait(name: "OpenTelemetry", description: "Export traces over OTLP/HTTP when OTEL_EXPORTER_OTLP_ENDPOINT is set (swift-otel)"),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-crypto.git", "3.12.3"..<"5.0.0"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-extras.git", from: "1.35.2"),
        .package(url: "https://github.com/apple/swift-nio-http2.git", from: "1.46.0"),
        .package(url: "https://github.com/apple/swift-http-types.git", from: "1.8.0"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
        .package(url: "https://github.com/groue/GRDB.swift.git", from: "7.10.0"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/x-sheep/swift-property-based.git", from: "2.0.1"),
        .package(url: "https://github.com/vapor/postgres-nio.git", from: "1.33.2"),
        .package(url: "https://github.com/apple/swift-distributed-tracing.git", from: "1.7.3"),
        // OTLP over HTTP only: its gRPC exporter (the OTLPGRPC trait) is never built.
        .package(url: "https://github.com/swift-otel/swift-otel.git", from: "1.6.0", traits: ["OTLPHTTP"]),
    ],
    targets: [
        // Everything the gateway's document says: messages, signatures, field rules. Pure, no I/O.
        .target(
            name: "GatewayProtocol",
            dependencies: [.product(name: "Crypto", package: "swift-crypto")],
            swiftSettings: swiftSettings
        ),
        // Reading configuration values shared by the sidecar and the simulator: durations, addresses, CIDRs,
        // the environment and secret files.
        .target(name: "ConfigurationValues", swiftSettings: swiftSettings),
        // libcurl, with typed wrappers for its variadic C functions.
        .systemLibrary(
            name: "CCurl",
            pkgConfig: "libcurl",
            providers: [.apt(["libcurl4-openssl-dev"])]
        ),
        // async/await HTTP client on libcurl's multi interface. Knows nothing about payments.
        .target(
            name: "CurlHTTP",
            dependencies: [
                "CCurl",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        // A faithful, stateful stand-in for the gateway, for tests and the demo.
        .target(
            name: "GatewaySimulator",
            dependencies: [
                "GatewayProtocol",
                "CurlHTTP",
                "ConfigurationValues",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTPTypes", package: "swift-nio-extras"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        // The order domain: the state machine that owns every transition, the order values, event bodies and
        // ids. Pure, no I/O.
        .target(
            name: "Orders",
            dependencies: ["GatewayProtocol", .product(name: "Crypto", package: "swift-crypto")],
            swiftSettings: swiftSettings
        ),
        // Durable state: the order journal and tombstones, callback receipts, the webhook outbox. Persists plain
        // values; knows no order rules. SQLite through GRDB.
        .target(
            name: "Ledger",
            dependencies: ["Orders", "GatewayProtocol", .product(name: "GRDB", package: "GRDB.swift")],
            swiftSettings: swiftSettings
        ),
        // The ledger on PostgreSQL, for several replicas sharing one database (contract section 10): the same
        // protocol and semantics as the SQLite ledger, claims with FOR UPDATE SKIP LOCKED, LISTEN/NOTIFY for the outbox.
        .target(
            name: "LedgerPostgres",
            dependencies: [
                "Ledger",
                "Orders",
                "GatewayProtocol",
                "ConfigurationValues",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        // Standard Webhooks: signing and verification (pure) and the retry policy.
        .target(
            name: "Webhooks",
            dependencies: [.product(name: "Crypto", package: "swift-crypto")],
            swiftSettings: swiftSettings
        ),
        // The sidecar: configuration, the two listeners and their routes, the gateway client.
        .target(
            name: "Sidecar",
            dependencies: [
                "GatewayProtocol",
                "CurlHTTP",
                "ConfigurationValues",
                "Orders",
                "Ledger",
                "LedgerPostgres",
                "Webhooks",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTPTypes", package: "swift-nio-extras"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
            ],
            resources: [.embedInCode("openapi.json")],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "pay-sidecar",
            dependencies: [
                "Sidecar",
                "GatewaySimulator",
                "GatewayProtocol",
                "ConfigurationValues",
                "CurlHTTP",
                "Webhooks",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
                .product(name: "OTel", package: "swift-otel", condition: .when(traits: ["OpenTelemetry"])),
            ],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "gateway-sim",
            dependencies: [
                "GatewaySimulator",
                "CurlHTTP",
                "ConfigurationValues",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        // A loopback HTTP server and helpers shared by the test targets.
        .target(
            name: "TestSupport",
            dependencies: [
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            ],
            path: "Tests/TestSupport",
            swiftSettings: swiftSettings
        ),
        // A fresh PostgreSQL database per test, on the server PAYSIDECAR_TEST_POSTGRES_URL names.
        .target(
            name: "PostgresTestSupport",
            dependencies: [
                "LedgerPostgres",
                "Ledger",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Tests/PostgresTestSupport",
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "GatewayProtocolTests",
            dependencies: ["GatewayProtocol"],
            resources: [.copy("Resources")],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "CurlHTTPTests",
            dependencies: [
                "CurlHTTP",
                "TestSupport",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOHTTP2", package: "swift-nio-http2"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "ServiceLifecycleTestKit", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "GatewaySimulatorTests",
            dependencies: [
                "GatewaySimulator",
                "CurlHTTP",
                "TestSupport",
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "OrdersTests",
            dependencies: [
                "Orders",
                "GatewayProtocol",
                .product(name: "PropertyBased", package: "swift-property-based"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "LedgerTests",
            dependencies: [
                "Ledger",
                "LedgerPostgres",
                "PostgresTestSupport",
                "Orders",
                "GatewayProtocol",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "SidecarTests",
            dependencies: [
                "Sidecar",
                "Orders",
                "GatewaySimulator",
                "GatewayProtocol",
                "CurlHTTP",
                "ConfigurationValues",
                "Ledger",
                "LedgerPostgres",
                "TestSupport",
                "PostgresTestSupport",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
    ]
)
