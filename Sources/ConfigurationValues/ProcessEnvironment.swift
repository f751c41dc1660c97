#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Reading the process environment and secret files, without Foundation.
public enum ProcessEnvironment {
    /// The environment as a dictionary.
    public static func read() -> [String: String] {
        var result: [String: String] = [:]
        var pointer = environ
        while let entry = pointer.pointee {
            let pair = String(cString: entry)
            if let eq = pair.firstIndex(of: "=") { result[String(pair[..<eq])] = String(pair[pair.index(after: eq)...]) }
            pointer += 1
        }
        return result
    }

    /// A file's contents as UTF-8 with surrounding whitespace trimmed (Docker and Kubernetes secrets end in a
    /// newline), or nil if it cannot be read or is not UTF-8.
    public static func readTrimmedFile(_ path: String) -> String? {
        guard let file = fopen(path, "r") else { return nil }
        defer { fclose(file) }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = fread(&buffer, 1, buffer.count, file)
            if n <= 0 { break }
            bytes.append(contentsOf: buffer[0..<n])
            if bytes.count > 1 << 20 { return nil }
        }
        if ferror(file) != 0 { return nil }
        return String(validating: bytes, as: UTF8.self)?.trimmingSpaces()
    }
}
