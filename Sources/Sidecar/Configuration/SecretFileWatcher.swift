import ConfigurationValues
import ServiceLifecycle

/// Reloads the secrets when one of their `*_FILE`s changes (a Kubernetes secret update, a rewritten Docker
/// secret), as SIGHUP does. Files are compared by content every `SidecarServer.secretFilePollInterval`; a file
/// that cannot be read keeps the secrets in use (the reload reports the error).
struct SecretFileWatcher: Service {
    let server: SidecarServer

    func run() async throws {
        let files = server.configuration.secretFiles
        // A service that returns would end the whole group: with nothing to watch, wait for shutdown.
        guard !files.isEmpty else { return try await gracefulShutdown() }
        await cancelWhenGracefulShutdown {
            var last = files.map(ProcessEnvironment.readTrimmedFile)
            while !Task.isCancelled {
                try? await Task.sleep(for: SidecarServer.secretFilePollInterval)
                guard !Task.isCancelled else { return }
                let now = files.map(ProcessEnvironment.readTrimmedFile)
                if now != last {
                    last = now
                    server.reloadSecrets(trigger: "file change")
                }
            }
        }
    }
}
