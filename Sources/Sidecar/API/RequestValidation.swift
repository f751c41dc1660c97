import GatewayProtocol

/// The internal API's request reading (JSON parse + field rules) without HTTP, for the microbenchmarks.
@_spi(Benchmarks)
public enum RequestValidation {
    /// Parses and validates a `POST /v1/deposits` body; true when the sidecar would accept it.
    public static func deposit(_ body: [UInt8]) -> Bool {
        guard let members = try? JSONValue.parse(body).members else { return false }
        if case .success = DepositInput.validate(members) { return true }
        return false
    }

    /// Parses and validates a `POST /v1/payouts` body; true when the sidecar would accept it.
    public static func payout(_ body: [UInt8]) -> Bool {
        guard let members = try? JSONValue.parse(body).members else { return false }
        if case .success = PayoutInput.validate(members) { return true }
        return false
    }
}
