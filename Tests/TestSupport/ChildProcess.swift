import Foundation
import NIOConcurrencyHelpers

#if canImport(Glibc)
import Glibc
#endif

/// A child process started with `posix_spawn`, for tests that run the real binaries.
///
/// Not Foundation's `Process`: on Linux (Swift 6.3) its `run()` lists `/proc/self/fd` by copying each entry's
/// whole 256-byte name field, which reads past glibc's buffer and crashes once the process has more than about
/// 1,300 descriptors open, as this test process does while its suites run in parallel
/// (swiftlang/swift-corelibs-foundation#5472, fixed after 6.3). Here the child's standard streams are files
/// (or /dev/null), every other descriptor is closed in the child, its signal mask is empty and the usual
/// termination signals are back to their default action (a handler set to ignore would survive the exec).
/// A thread of its own waits for the exit, so `isRunning` and `wait()` are safe from any thread.
public final class ChildProcess: Sendable {
    public enum Termination: Sendable, Equatable {
        case exited(Int32)
        case signalled(Int32)
    }

    public let processIdentifier: pid_t
    private let state = NIOLockedValueBox<Termination?>(nil)
    private let exited = ConditionLock(value: false)

    /// Starts `executable` (a path; use /usr/bin/env to search PATH) with `arguments`, exactly `environment`,
    /// in `directory`, standard input from `input` (a file; /dev/null when nil), standard output and error
    /// appended to `output` and `error` (error defaults to output; both to /dev/null when nil).
    public init(
        _ executable: String, _ arguments: [String] = [], environment: [String: String],
        directory: String? = nil, input: String? = nil, output: String? = nil, error: String? = nil
    ) throws {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }

        posix_spawn_file_actions_addopen(&actions, 0, input ?? "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, output ?? "/dev/null", O_WRONLY | O_CREAT | O_APPEND, 0o644)
        if let error, error != output {
            posix_spawn_file_actions_addopen(&actions, 2, error, O_WRONLY | O_CREAT | O_APPEND, 0o644)
        } else {
            posix_spawn_file_actions_adddup2(&actions, 1, 2)
        }
        if let directory { try check(GNUSpawn.addChdir(&actions, directory), "chdir") }
        try check(GNUSpawn.addCloseFrom(&actions, 3), "closefrom")

        var noSignals = sigset_t()
        sigemptyset(&noSignals)
        posix_spawnattr_setsigmask(&attributes, &noSignals)
        var defaults = sigset_t()
        sigemptyset(&defaults)
        for signal in [SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGPIPE, SIGCHLD, SIGUSR1, SIGUSR2] { sigaddset(&defaults, signal) }
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))

        let argv = ([executable] + arguments).map { strdup($0) } + [nil]
        let envp = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { for pointer in argv + envp { free(pointer) } }
        var pid = pid_t()
        let rc = posix_spawn(&pid, executable, &actions, &attributes, argv, envp)
        guard rc == 0 else {
            throw ChildProcessError("cannot start \(executable): \(String(cString: strerror(rc)))")
        }
        processIdentifier = pid

        let thread = Thread { [state, exited, pid] in
            var status: Int32 = 0
            while waitpid(pid, &status, 0) < 0, errno == EINTR {}
            // WIFEXITED / WEXITSTATUS / WTERMSIG, which Swift does not import (they are macros).
            let termination: Termination = status & 0x7F == 0 ? .exited((status >> 8) & 0xFF) : .signalled(status & 0x7F)
            state.withLockedValue { $0 = termination }
            exited.lock()
            exited.unlock(withValue: true)
        }
        thread.start()
    }

    /// Runs `executable` to completion (blocking: call it off Swift's cooperative pool).
    public static func run(
        _ executable: String, _ arguments: [String] = [], environment: [String: String],
        directory: String? = nil, input: String? = nil, output: String? = nil, error: String? = nil
    ) throws -> Termination {
        try ChildProcess(executable, arguments, environment: environment, directory: directory, input: input, output: output, error: error).wait()
    }

    /// Runs `executable` to completion (blocking) with `input` as its standard input, and returns what it wrote
    /// to its standard output and error (through temporary files: no pipe to drain).
    public static func capture(
        _ executable: String, _ arguments: [String] = [], environment: [String: String], directory: String? = nil, input: String = ""
    ) throws -> (termination: Termination, stdout: String, stderr: String) {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("run-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let paths = ["stdin", "stdout", "stderr"].map { folder.appendingPathComponent($0).path }
        _ = FileManager.default.createFile(atPath: paths[0], contents: Data(input.utf8))
        let termination = try run(executable, arguments, environment: environment, directory: directory, input: paths[0], output: paths[1], error: paths[2])
        func read(_ path: String) -> String { FileManager.default.contents(atPath: path).map { String(decoding: $0, as: UTF8.self) } ?? "" }
        return (termination, read(paths[1]), read(paths[2]))
    }

    public var termination: Termination? { state.withLockedValue { $0 } }
    public var isRunning: Bool { termination == nil }

    /// Blocks until the process has exited.
    @discardableResult
    public func wait() -> Termination {
        exited.lock(whenValue: true)
        exited.unlock()
        return termination!
    }

    public func signal(_ signal: Int32) {
        if isRunning { kill(processIdentifier, signal) }
    }

    public func terminate() { signal(SIGTERM) }
}

private func check(_ rc: Int32, _ action: String) throws {
    if rc != 0 { throw ChildProcessError("posix_spawn \(action): \(String(cString: strerror(rc)))") }
}

/// glibc's `posix_spawn_file_actions_addchdir_np` (2.29) and `_addclosefrom_np` (2.34): declared only under
/// _GNU_SOURCE, which Swift's Glibc module does not set, so looked up by name.
private enum GNUSpawn {
    typealias AddChdir = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, UnsafePointer<CChar>) -> Int32
    typealias AddCloseFrom = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, Int32) -> Int32

    static func addChdir(_ actions: UnsafeMutablePointer<posix_spawn_file_actions_t>, _ directory: String) -> Int32 {
        guard let function = lookup("posix_spawn_file_actions_addchdir_np", as: AddChdir.self) else { return ENOSYS }
        return function(actions, directory)
    }

    static func addCloseFrom(_ actions: UnsafeMutablePointer<posix_spawn_file_actions_t>, _ from: Int32) -> Int32 {
        guard let function = lookup("posix_spawn_file_actions_addclosefrom_np", as: AddCloseFrom.self) else { return ENOSYS }
        return function(actions, from)
    }

    private static func lookup<F>(_ name: String, as type: F.Type) -> F? {
        // RTLD_DEFAULT: every object loaded in the process.
        guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), name) else { return nil }
        return unsafeBitCast(symbol, to: type)
    }
}

public struct ChildProcessError: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}
