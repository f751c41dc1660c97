#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Milliseconds since the Unix epoch: how the journal and the outbox store every time.
public typealias Millis = Int64

/// The wall clock, in milliseconds. The one clock of the sidecar: the order rules never read it (they are
/// given `now`), the code around them does.
public func nowMillis() -> Millis {
    var ts = timespec()
    clock_gettime(CLOCK_REALTIME, &ts)
    return Millis(ts.tv_sec) * 1000 + Millis(ts.tv_nsec) / 1_000_000
}

/// A duration in whole milliseconds (rounded toward zero).
public func milliseconds(_ d: Duration) -> Millis {
    d.components.seconds * 1000 + d.components.attoseconds / 1_000_000_000_000_000
}

/// `2026-11-29T03:28:47.123Z`: an RFC 3339 UTC timestamp with milliseconds, from milliseconds since 1970.
///
/// Plain integer arithmetic (Howard Hinnant's days-to-civil), because every log line carries one: Foundation's
/// `ISO8601FormatStyle` costs microseconds per call. The text of `Date.ISO8601FormatStyle(includingFractionalSeconds:
/// true)` for years 0 to 9999, except that the milliseconds are exact (Foundation goes through a `Double` and
/// prints 0.999 s as `.998`).
public func rfc3339(_ millis: Millis) -> String {
    let (days, msOfDay) = millis.quotientAndRemainderFlooring(by: 86_400_000)
    // Days since 1970-01-01 to a civil date (proleptic Gregorian).
    let z = days + 719_468
    let era = (z >= 0 ? z : z - 146_096) / 146_097
    let doe = z - era * 146_097
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
    let mp = (5 * doy + 2) / 153
    let day = doy - (153 * mp + 2) / 5 + 1
    let month = mp < 10 ? mp + 3 : mp - 9
    let year = yoe + era * 400 + (month <= 2 ? 1 : 0)

    var text = [UInt8]()
    text.reserveCapacity(24)
    func digits(_ value: Int64, _ count: Int) {
        var divisor: Int64 = 1
        for _ in 1..<count { divisor *= 10 }
        var rest = value
        while divisor > 0 {
            text.append(UInt8(ascii: "0") + UInt8(rest / divisor))
            rest %= divisor
            divisor /= 10
        }
    }
    digits(year, 4); text.append(UInt8(ascii: "-"))
    digits(month, 2); text.append(UInt8(ascii: "-"))
    digits(day, 2); text.append(UInt8(ascii: "T"))
    digits(msOfDay / 3_600_000, 2); text.append(UInt8(ascii: ":"))
    digits(msOfDay / 60_000 % 60, 2); text.append(UInt8(ascii: ":"))
    digits(msOfDay / 1000 % 60, 2); text.append(UInt8(ascii: "."))
    digits(msOfDay % 1000, 3); text.append(UInt8(ascii: "Z"))
    return String(decoding: text, as: UTF8.self)
}

extension Int64 {
    /// Division rounding toward minus infinity, with a remainder that is never negative.
    fileprivate func quotientAndRemainderFlooring(by divisor: Int64) -> (Int64, Int64) {
        let (q, r) = quotientAndRemainder(dividingBy: divisor)
        return r < 0 ? (q - 1, r + divisor) : (q, r)
    }
}
