/// A deposit amount in yuan, kept as the exact text the caller wrote.
///
/// Rules (contract section 3): greater than zero, at most two decimals, plain decimal digits: no sign,
/// exponent, leading zeros or surrounding spaces. `88.50` stays `88.50`; it is never a `Double`.
public struct DepositAmount: Sendable, Hashable, CustomStringConvertible {
    /// The exact characters that are signed and sent.
    public let text: String
    /// The amount in fen (1/100 yuan), for comparisons.
    public let minorUnits: Int64

    public init?(_ text: String) {
        guard let parsed = AmountText.parse(text, maxDecimals: 2, strict: true), parsed > 0 else { return nil }
        self.text = text
        self.minorUnits = parsed
    }

    public var description: String { text }

    /// Why `text` is not a valid deposit amount, or nil if it is.
    public static func problem(_ text: String) -> String? {
        if DepositAmount(text) != nil { return nil }
        return "must be a positive amount in yuan with at most 2 decimals, plain digits (e.g. 100 or 88.50)"
    }
}

/// A payout amount: a positive whole number of yuan, kept as its exact text.
public struct PayoutAmount: Sendable, Hashable, CustomStringConvertible {
    public let text: String
    /// Whole yuan.
    public let yuan: Int64

    public init?(_ text: String) {
        guard let parsed = AmountText.parse(text, maxDecimals: 0, strict: true), parsed > 0 else { return nil }
        self.text = text
        self.yuan = parsed
    }

    public init(yuan: Int64) {
        precondition(yuan > 0, "a payout amount is positive")
        self.text = String(yuan)
        self.yuan = yuan
    }

    public var description: String { text }
    /// The amount in fen.
    public var minorUnits: Int64 { yuan * 100 }

    public static func problem(_ text: String) -> String? {
        if PayoutAmount(text) != nil { return nil }
        return "must be a positive whole number of yuan, plain digits (e.g. 500)"
    }
}

/// Reading amount text without ever going through floating point.
public enum AmountText {
    /// At most this many digits before the decimal point (999,999,999,999 yuan): far beyond any real
    /// order, and small enough that fen always fit in Int64.
    public static let maxIntegerDigits = 12

    /// Parses `text` into minor units (fen when `maxDecimals` is 2, yuan when 0).
    ///
    /// `strict` rejects leading zeros (`01`, `00.5`); the lenient form, used for amounts the gateway prints
    /// in callbacks, accepts them and also trailing zeros beyond `maxDecimals` (`100.000`).
    public static func parse(_ text: String, maxDecimals: Int, strict: Bool) -> Int64? {
        let bytes = Array(text.utf8)
        guard !bytes.isEmpty else { return nil }
        var i = 0
        var integer: Int64 = 0
        var integerDigits = 0
        let firstDigit = bytes[0]
        while i < bytes.count, bytes[i] >= UInt8(ascii: "0"), bytes[i] <= UInt8(ascii: "9") {
            integer = integer * 10 + Int64(bytes[i] - UInt8(ascii: "0"))
            integerDigits += 1
            i += 1
            if integerDigits > maxIntegerDigits + (strict ? 0 : 4) { return nil }
        }
        guard integerDigits > 0 else { return nil }
        if strict, integerDigits > 1, firstDigit == UInt8(ascii: "0") { return nil }
        guard integer <= 999_999_999_999 else { return nil }
        var fraction: Int64 = 0
        var fractionDigits = 0
        if i < bytes.count {
            guard bytes[i] == UInt8(ascii: "."), maxDecimals > 0 || !strict else { return nil }
            i += 1
            let start = i
            while i < bytes.count, bytes[i] >= UInt8(ascii: "0"), bytes[i] <= UInt8(ascii: "9") {
                let d = Int64(bytes[i] - UInt8(ascii: "0"))
                if fractionDigits < maxDecimals {
                    fraction = fraction * 10 + d
                } else if strict || d != 0 {
                    return nil  // more precision than the unit allows
                }
                fractionDigits += 1
                i += 1
            }
            guard i > start, i == bytes.count else { return nil }
        }
        var scale: Int64 = 1
        for _ in 0..<maxDecimals { scale *= 10 }
        for _ in min(fractionDigits, maxDecimals)..<maxDecimals { fraction *= 10 }
        return integer * scale + fraction
    }

    /// Formats fen as yuan text with two decimals, e.g. 9998 -> "99.98".
    public static func yuanText(fen: Int64) -> String {
        let sign = fen < 0 ? "-" : ""
        let magnitude = fen.magnitude
        let cents = magnitude % 100
        return "\(sign)\(magnitude / 100).\(cents < 10 ? "0" : "")\(cents)"
    }
}
