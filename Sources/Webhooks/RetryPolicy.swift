/// When to try a webhook again: the configured schedule, with jitter, honouring `Retry-After`.
public struct RetryPolicy: Sendable, Hashable {
    /// Delays between attempts after the first (PAYSIDECAR_WEBHOOK_RETRY_SCHEDULE).
    public var schedule: [Duration]
    /// Each delay is moved by up to this fraction either way, so retries after an outage do not arrive at once.
    public var jitter: Double
    /// A `Retry-After` longer than this is capped.
    public var maxRetryAfter: Duration = .seconds(24 * 3600)

    public init(schedule: [Duration], jitter: Double = 0.1) {
        self.schedule = schedule
        self.jitter = jitter
    }

    /// What follows an answer (or no answer) to an attempt.
    public enum Decision: Sendable, Hashable {
        case delivered
        case retry(after: Duration)
        case fail(reason: String)
    }

    /// - Parameters:
    ///   - attemptsSoFar: attempts made since the event was (re)queued, this one included.
    ///   - status: the receiver's HTTP status, nil when there was no answer.
    ///   - retryAfter: the receiver's `Retry-After` header.
    public func decide(attemptsSoFar: Int, status: Int?, retryAfter: String?, random: Double = Double.random(in: 0...1)) -> Decision {
        if let status, (200...299).contains(status) { return .delivered }
        if status == 410 { return .fail(reason: "the receiver answered 410 Gone") }
        let index = attemptsSoFar - 1
        guard index >= 0, index < schedule.count else {
            return .fail(reason: "no answer in 2xx after \(attemptsSoFar) attempt\(attemptsSoFar == 1 ? "" : "s") (the retry schedule is used up)")
        }
        var delay = schedule[index]
        if jitter > 0 {
            let factor = 1 + jitter * (2 * random - 1)
            delay = .milliseconds(Int64((Double(Self.milliseconds(delay)) * factor).rounded()))
        }
        if let status, status == 429 || status == 503, let retryAfter, let seconds = Int64(retryAfter.trimmingSpaces()), seconds >= 0 {
            delay = max(delay, min(.seconds(seconds), maxRetryAfter))
        }
        return .retry(after: delay)
    }

    static func milliseconds(_ d: Duration) -> Int64 {
        d.components.seconds * 1000 + d.components.attoseconds / 1_000_000_000_000_000
    }
}

extension String {
    func trimmingSpaces() -> String {
        var s = Substring(self)
        while let f = s.first, f == " " { s.removeFirst() }
        while let l = s.last, l == " " { s.removeLast() }
        return String(s)
    }
}
