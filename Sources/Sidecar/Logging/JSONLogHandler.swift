import Foundation
import Logging

/// One JSON object per line on standard output: `ts`, `level`, `msg`, `logger`, then the metadata.
public struct JSONLogHandler: LogHandler {
    public var logLevel: Logger.Level
    public var metadata: Logger.Metadata = [:]
    let label: String

    public init(label: String, level: Logger.Level) {
        self.label = label
        self.logLevel = level
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var line: [UInt8] = []
        line.reserveCapacity(256)
        line.append(contentsOf: #"{"ts":"#.utf8)
        Self.writeString(Date().formatted(Date.ISO8601FormatStyle(includingFractionalSeconds: true)), &line)
        line.append(contentsOf: #","level":"#.utf8)
        Self.writeString(event.level.rawValue, &line)
        line.append(contentsOf: #","msg":"#.utf8)
        Self.writeString("\(event.message)", &line)
        line.append(contentsOf: #","logger":"#.utf8)
        Self.writeString(label, &line)
        var merged = metadata
        if let extra = event.metadata { merged.merge(extra) { _, new in new } }
        for key in merged.keys.sorted() {
            line.append(UInt8(ascii: ","))
            Self.writeString(key, &line)
            line.append(UInt8(ascii: ":"))
            Self.writeString("\(merged[key]!)", &line)
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

    static func writeString(_ s: String, _ out: inout [UInt8]) {
        let hex: [UInt8] = Array("0123456789abcdef".utf8)
        out.append(UInt8(ascii: "\""))
        for b in s.utf8 {
            switch b {
            case 0x22: out.append(contentsOf: [0x5C, 0x22])
            case 0x5C: out.append(contentsOf: [0x5C, 0x5C])
            case 0x0A: out.append(contentsOf: [0x5C, UInt8(ascii: "n")])
            case 0x00..<0x20:
                out.append(contentsOf: [0x5C, UInt8(ascii: "u"), 0x30, 0x30, hex[Int(b >> 4)], hex[Int(b & 0xF)]])
            default: out.append(b)
            }
        }
        out.append(UInt8(ascii: "\""))
    }
}

extension LoggingSystem {
    /// Sets up swift-log once for the process, in the configured format and level.
    public static func bootstrapSidecar(format: LogFormat, level: Logger.Level) {
        bootstrap { label in
            switch format {
            case .json:
                return JSONLogHandler(label: label, level: level)
            case .text:
                var handler = StreamLogHandler.standardOutput(label: label)
                handler.logLevel = level
                return handler
            }
        }
    }
}
