import Foundation
import TestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

@Suite("Child processes for the binary tests")
struct ChildProcessTests {
    @Test("with thousands of descriptors open, children start and inherit none of them; exit codes and signals are told apart")
    func manyDescriptors() async throws {
        // Foundation's Process.run() crashed (intermittently) past about 1,300 open descriptors; this test process
        // has more than 2,000 while the suites run in parallel.
        var limit = rlimit()
        getrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limit)
        let extra = min(2_500, Int(limit.rlim_cur) - 500)
        try #require(extra > 1_500, "the descriptor limit (\(limit.rlim_cur)) is too low for this test")
        // Opened without O_CLOEXEC, as a careless library would: only the spawn's own closing keeps them out.
        let descriptors = (0..<extra).map { _ in open("/dev/null", O_RDONLY) }
        defer { for descriptor in descriptors where descriptor >= 0 { close(descriptor) } }
        #expect(descriptors.allSatisfy { $0 >= 0 })

        let results = try await offThePool {
            try (0..<20).map { _ in
                try runCapturing("/bin/sh", ["-c", "ls /proc/self/fd | wc -l"], environment: ["PATH": "/usr/bin:/bin"])
            }
        }
        for result in results {
            #expect(result.status == 0, "\(result.stderr)")
            // 0, 1, 2 and the one `ls` opens to read the folder.
            #expect(Int(result.stdout.trimmingCharacters(in: .whitespacesAndNewlines)) == 4, "\(result.stdout)")
        }

        #expect(try ChildProcess.run("/bin/sh", ["-c", "exit 3"], environment: [:]) == .exited(3))
        let sleeper = try ChildProcess("/bin/sleep", ["30"], environment: [:])
        #expect(sleeper.isRunning)
        sleeper.terminate()
        #expect(try await offThePool { sleeper.wait() } == .signalled(SIGTERM))
        #expect(!sleeper.isRunning)
    }
}
