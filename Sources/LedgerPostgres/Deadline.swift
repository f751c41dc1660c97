import Ledger
import Synchronization

/// Runs `operation`, but stops waiting for it after `limit`, throwing `LedgerError("no answer within ...")`, and
/// when the calling task is cancelled.
///
/// A task group would not do: it waits for its children, and a postgres-nio query waits for its answer whatever
/// the task's cancellation says. While the database is unreachable a pooled call waits about 65 s for the pool's
/// circuit breaker; with this a request fails after `limit` and the sidecar answers 503 instead. The abandoned
/// operation is cancelled and finishes in the background (a statement is also bounded by the server's
/// `statement_timeout`); a transaction abandoned this way may still commit, as one whose answer was lost would:
/// callers treat the failure as "outcome unknown" and read the journal again.
func withDeadline<T: Sendable>(_ limit: Duration, _ operation: @escaping @Sendable () async throws -> T) async throws -> T {
    let answer = FirstAnswer<T>()
    let work = Task {
        let result: Result<T, any Error>
        do {
            result = .success(try await operation())
        } catch {
            result = .failure(error)
        }
        answer.settle(result)
    }
    let timer = Task {
        do { try await Task.sleep(for: limit) } catch { return }
        if answer.settle(.failure(LedgerError("no answer within \(limit)"))) { work.cancel() }
    }
    defer { timer.cancel() }
    return try await withTaskCancellationHandler {
        try await answer.value()
    } onCancel: {
        if answer.settle(.failure(CancellationError())) { work.cancel() }
    }
}

/// The first of several results (the work's, the timer's, a cancellation), handed to one waiter.
private final class FirstAnswer<T: Sendable>: Sendable {
    private enum State {
        case pending(waiter: CheckedContinuation<T, any Error>?)
        case settled(Result<T, any Error>)
        case delivered
    }
    private let state = Mutex(State.pending(waiter: nil))

    /// Settles with `result` unless settled already; true when this call did.
    @discardableResult
    func settle(_ result: Result<T, any Error>) -> Bool {
        let (first, waiter) = state.withLock { state -> (Bool, CheckedContinuation<T, any Error>?) in
            guard case .pending(let waiter) = state else { return (false, nil) }
            if let waiter {
                state = .delivered
                return (true, waiter)
            }
            state = .settled(result)
            return (true, nil)
        }
        waiter?.resume(with: result)
        return first
    }

    /// Waits for the result; called once.
    func value() async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            let ready = state.withLock { state -> Result<T, any Error>? in
                switch state {
                case .pending:
                    state = .pending(waiter: continuation)
                    return nil
                case .settled(let result):
                    state = .delivered
                    return result
                case .delivered:
                    return .failure(LedgerError("internal: a deadline's answer was awaited twice"))
                }
            }
            if let ready { continuation.resume(with: ready) }
        }
    }
}
