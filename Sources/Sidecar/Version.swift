import CurlHTTP

/// What this build of the sidecar is: shown by `pay-sidecar --version`, the start-up log line, the
/// `paysidecar_build_info` metric and the OpenAPI document (a test keeps the last in step).
public enum SidecarBuild {
    /// The release, in semantic versioning.
    public static let version = "0.4.0"

    /// `0.4.0 (libcurl/7.88.1 OpenSSL/3.0.15 ...)`: the version and the libcurl this process loaded.
    public static var description: String { "\(version) (\(CurlClient.libcurlVersion))" }

    /// The libcurl release alone, e.g. `7.88.1`.
    static var libcurlRelease: String {
        let first = CurlClient.libcurlVersion.split(separator: " ").first ?? ""
        return first.split(separator: "/").last.map(String.init) ?? "unknown"
    }
}
