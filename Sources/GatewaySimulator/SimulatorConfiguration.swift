import GatewayProtocol

/// How a simulator instance behaves: who the merchant is, its balance, and how callbacks are retried.
public struct SimulatorConfiguration: Sendable {
    /// Address to listen on; port 0 picks a free port (see `GatewaySimulator.boundPort`).
    public var host: String = "127.0.0.1"
    public var port: Int = 9090
    /// The one merchant account the simulator knows.
    public var appKey: String
    public var secretKey: MerchantSecret
    /// The merchant's balance in fen (1/100 yuan).
    public var balanceFen: Int64 = 1_000_000 * 100
    /// When set, every new order is settled as paid after this delay (for demos).
    public var autoSettle: Duration?
    /// Delays between callback attempts after the first; after the last, the simulator gives up.
    public var callbackRetrySchedule: [Duration] = [.seconds(1), .seconds(2), .seconds(5), .seconds(15), .seconds(30), .seconds(60), .seconds(300)]
    /// Time allowed for one callback attempt.
    public var callbackTimeout: Duration = .seconds(10)
    /// Largest request body accepted.
    public var maxBodySize: Int = 1 << 20

    public init(appKey: String, secretKey: MerchantSecret) {
        self.appKey = appKey
        self.secretKey = secretKey
    }
}

/// Reads durations written as `250ms`, `5s`, `2m`, `1h` (or a bare number of milliseconds).
public func parseDuration(_ text: String) -> Duration? {
    let t = text.trimmingCharacters(in: " ")
    let units: [(String, Int64)] = [("ms", 1), ("s", 1000), ("m", 60_000), ("h", 3_600_000)]
    for (suffix, factor) in units where t.hasSuffix(suffix) {
        let number = t.dropLast(suffix.count)
        guard !number.isEmpty, number.allSatisfy(\.isASCIIDigitCharacter), let n = Int64(number), n <= Int64.max / factor / 1_000_000 else { return nil }
        return .milliseconds(n * factor)
    }
    if !t.isEmpty, t.allSatisfy(\.isASCIIDigitCharacter), let n = Int64(t) { return .milliseconds(n) }
    return nil
}

extension Character {
    var isASCIIDigitCharacter: Bool { ("0"..."9").contains(self) }
}

extension String {
    func trimmingCharacters(in set: Character) -> String {
        var s = Substring(self)
        while s.first == set { s.removeFirst() }
        while s.last == set { s.removeLast() }
        return String(s)
    }
}
