import NIOCore
import NIOPosix
import Testing

@testable import Sidecar

@Suite("Event loop task executor")
struct ExecutorTests {
    @Test("tasks preferring it run on the group's event loops, child tasks too, and come back there after a suspension")
    func runsOnEventLoops() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        #expect(MultiThreadedEventLoopGroup.currentEventLoop == nil, "the test itself runs on Swift's pool")
        let loops = try await withTaskExecutorPreference(EventLoopTaskExecutor(group: group)) {
            try await withThrowingTaskGroup(of: [Bool].self) { tasks in
                for _ in 0..<8 {
                    tasks.addTask {
                        var onLoop = [MultiThreadedEventLoopGroup.currentEventLoop != nil]
                        try await Task.sleep(for: .milliseconds(5))
                        onLoop.append(MultiThreadedEventLoopGroup.currentEventLoop != nil)
                        return onLoop
                    }
                }
                return try await tasks.reduce(into: [Bool]()) { $0 += $1 }
            }
        }
        #expect(loops.count == 16 && loops.allSatisfy { $0 })
        try await group.shutdownGracefully()
    }
}
