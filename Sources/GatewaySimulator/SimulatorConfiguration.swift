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
    /// How many entries `GET /_sim/requests` and `GET /_sim/callbacks` keep (the newest).
    public var logLimit: Int = 10_000

    public init(appKey: String, secretKey: MerchantSecret) {
        self.appKey = appKey
        self.secretKey = secretKey
    }
}
