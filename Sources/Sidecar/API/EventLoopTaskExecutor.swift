import NIOCore
import NIOPosix

/// Runs the HTTP listeners' tasks on NIO's event loops instead of Swift's global pool.
///
/// A request arrives on an event loop and its answer is written there; with the default executor every
/// request crosses to a pool thread and back, each crossing a thread wake-up (tens of microseconds on a
/// small machine, more than the handler's own work). A job enqueued from an event loop runs on that same
/// loop; one enqueued from elsewhere (the libcurl thread resuming a caller, a database queue) goes to the
/// next loop of the group. Handlers must not block: the sidecar's only synchronous work on this path is
/// parsing, signing and a non-durable journal commit (a WAL append); durable commits wait on the
/// database's own queue. Set with `withTaskExecutorPreference`, it is inherited by the server's child
/// tasks (one per connection).
final class EventLoopTaskExecutor: TaskExecutor {
    let group: any EventLoopGroup

    init(group: any EventLoopGroup) {
        self.group = group
    }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        let loop = MultiThreadedEventLoopGroup.currentEventLoop ?? group.next()
        loop.execute { job.runSynchronously(on: self.asUnownedTaskExecutor()) }
    }
}
