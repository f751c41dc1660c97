import Logging
import ServiceLifecycle
import Sidecar

#if OpenTelemetry
import OTel
#endif

/// Trace export over OTLP/HTTP (swift-otel), switched on by `OTEL_EXPORTER_OTLP_ENDPOINT` (or its traces-only form)
/// in a build with the `OpenTelemetry` trait. Traces only: the sidecar keeps its own Prometheus metrics and JSON
/// logs. Without the variable nothing is bootstrapped and start-up does exactly what it did before (cold start is a
/// tracked figure); with it in a build without the trait, start-up logs one warning and goes on untraced.
enum TraceExport {
    /// Whether this binary was built with the exporter (the `OpenTelemetry` trait).
    static var isBuiltIn: Bool {
        #if OpenTelemetry
        return true
        #else
        return false
        #endif
    }

    /// The variables that switch export on; either names where spans go.
    static let endpointVariables = ["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT"]

    /// The endpoint variable that asks for traces, if one is set (and `OTEL_SDK_DISABLED` does not say otherwise).
    static func requested(by environment: [String: String]) -> String? {
        if environment["OTEL_SDK_DISABLED"]?.lowercased() == "true" { return nil }
        return endpointVariables.first { !(environment[$0] ?? "").isEmpty }
    }

    /// Adds `trace_id` and `span_id` of the span running where a line is written (nil in a build without the trait).
    static var loggingMetadataProvider: Logger.MetadataProvider? {
        #if OpenTelemetry
        // `trace_id` and `span_id` are its default keys; only the two ids are kept (the flags tell a reader nothing).
        let provider = OTel.makeLoggingMetadataProvider()
        return Logger.MetadataProvider {
            var metadata = provider.get()
            metadata["trace_flags"] = nil
            return metadata
        }
        #else
        return nil
        #endif
    }

    /// Checks the OTEL_* settings swift-otel would stop the process over (it calls `fatalError` for what it does not
    /// support), so that a bad one is a start-up error naming the variable instead.
    static func validate(_ environment: [String: String]) throws(ConfigurationError) {
        for name in ["OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL"] {
            if let value = environment[name], !value.isEmpty, value != "http/protobuf", value != "http/json" {
                throw ConfigurationError(name, "must be http/protobuf or http/json (this build exports traces over OTLP/HTTP only), not \(value)")
            }
        }
        if let value = environment["OTEL_TRACES_EXPORTER"], !value.isEmpty, value != "otlp", value != "none" {
            throw ConfigurationError("OTEL_TRACES_EXPORTER", "must be otlp or none, not \(value)")
        }
        if let value = environment["OTEL_PROPAGATORS"], !value.isEmpty, !value.split(separator: ",").allSatisfy({ $0.filter { $0 != " " } == "tracecontext" }) {
            throw ConfigurationError("OTEL_PROPAGATORS", "must be tracecontext (W3C Trace Context, what webhooks carry), not \(value)")
        }
        if let value = environment["OTEL_TRACES_SAMPLER"], ["jaeger_remote", "parentbased_jaeger_remote", "xray"].contains(value) {
            throw ConfigurationError("OTEL_TRACES_SAMPLER", "\(value) is not supported")
        }
    }

    /// Bootstraps the tracer and returns the exporter's service (run it first in the group, so it is stopped last
    /// and flushes the spans of the requests that finished during shutdown).
    static func bootstrap(environment: [String: String], logger: Logger) throws -> any Service {
        #if OpenTelemetry
        try validate(environment)
        var configuration = OTel.Configuration.default
        configuration.serviceName = "pay-sidecar"
        configuration.logs.enabled = false
        configuration.metrics.enabled = false
        configuration.traces.exporter = .otlp
        configuration.traces.otlpExporter.protocol = .httpProtobuf
        configuration.propagators = [.traceContext]
        // swift-otel's own diagnostics go through the sidecar's logs (JSON lines), warnings and worse only.
        configuration.diagnosticLogger = .custom(logger)
        configuration.diagnosticLogLevel = .warning
        // The standard variables (OTEL_SERVICE_NAME, OTEL_EXPORTER_OTLP_*, OTEL_BSP_*, OTEL_TRACES_SAMPLER, ...)
        // override what is set here, as swift-otel reads them.
        return try OTel.bootstrap(configuration: configuration, environment: environment)
        #else
        throw ConfigurationError("OTEL_EXPORTER_OTLP_ENDPOINT", "this build has no trace exporter")
        #endif
    }
}
