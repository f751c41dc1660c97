import Foundation
import GatewayProtocol
import Logging
import Orders

/// One JSON object per line on standard output: `ts`, `level`, `msg`, `logger`, then the metadata: the handler's,
/// then the metadata provider's (with traces exported: `trace_id` and `span_id` of the span running where the line
/// is written), then the line's own, a later one winning on the same key.
public struct JSONLogHandler: LogHandler {
    public var logLevel: Logger.Level
    public var metadata: Logger.Metadata = [:]
    public var metadataProvider: Logger.MetadataProvider?
    let label: String

    public init(label: String, level: Logger.Level, metadataProvider: Logger.MetadataProvider? = nil) {
        self.label = label
        self.logLevel = level
        self.metadataProvider = metadataProvider
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var line: [UInt8] = []
        line.reserveCapacity(256)
        line.append(contentsOf: #"{"ts":"#.utf8)
        line.append(UInt8(ascii: "\""))
        line.append(contentsOf: rfc3339(nowMillis()).utf8)
        line.append(UInt8(ascii: "\""))
        line.append(contentsOf: #","level":"#.utf8)
        JSONValue.writeString(event.level.rawValue, into: &line)
        line.append(contentsOf: #","msg":"#.utf8)
        JSONValue.writeString("\(event.message)", into: &line)
        line.append(contentsOf: #","logger":"#.utf8)
        JSONValue.writeString(label, into: &line)
        var merged = metadata
        if let provided = metadataProvider?.get(), !provided.isEmpty { merged.merge(provided) { _, new in new } }
        if let extra = event.metadata { merged.merge(extra) { _, new in new } }
        for key in merged.keys.sorted() {
            line.append(UInt8(ascii: ","))
            JSONValue.writeString(key, into: &line)
            line.append(UInt8(ascii: ":"))
            JSONValue.writeString("\(merged[key]!)", into: &line)
        }
        line.append(contentsOf: "}\n".utf8)
        // One write(2) per line: lines from different threads never interleave.
        line.withUnsafeBufferPointer { buffer in
            var offset = 0
            while offset < buffer.count {
                let n = write(1, buffer.baseAddress! + offset, buffer.count - offset)
                if n <= 0 { break }
                offset += n
            }
        }
    }
}

extension LoggingSystem {
    /// Sets up swift-log once for the process, in the configured format and level. `metadataProvider` adds
    /// metadata to every line (the trace context, when traces are exported).
    public static func bootstrapSidecar(format: LogFormat, level: Logger.Level, metadataProvider: Logger.MetadataProvider? = nil) {
        bootstrap({ label, provider in
            switch format {
            case .json:
                return JSONLogHandler(label: label, level: level, metadataProvider: provider)
            case .text:
                var handler = StreamLogHandler.standardOutput(label: label, metadataProvider: provider)
                handler.logLevel = level
                return handler
            }
        }, metadataProvider: metadataProvider)
    }
}
