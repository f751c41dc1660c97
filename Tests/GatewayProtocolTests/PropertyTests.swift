import Foundation
import Testing

@testable import GatewayProtocol

/// A small seeded generator (SplitMix64), so a failing case can be replayed from its seed.
struct SeededGenerator: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

enum Generate {
    static let alphabet: [Character] = Array("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.~ ") + Array("张三李四中国工商银行支付宝微信短订单号") + ["é", "ß", "😀"]

    static func text(_ rng: inout SeededGenerator, length: ClosedRange<Int> = 1...24) -> String {
        String((0..<Int.random(in: length, using: &rng)).map { _ in alphabet.randomElement(using: &rng)! })
    }

    static func amount(_ rng: inout SeededGenerator) -> String {
        let whole = Int.random(in: 1...9_999_999, using: &rng)
        switch Int.random(in: 0...2, using: &rng) {
        case 0: return String(whole)
        case 1: return "\(whole).\(Int.random(in: 0...9, using: &rng))"
        default: return "\(whole).\(Int.random(in: 10...99, using: &rng))"
        }
    }

    static func url(_ rng: inout SeededGenerator) -> String {
        let host = ["shop.example", "127.0.0.1:8081", "cb.例子.example", "pay.example.com"].randomElement(using: &rng)!
        var url = "\(Bool.random(using: &rng) ? "https" : "http")://\(host)/\(text(&rng, length: 1...8).replacingOccurrences(of: " ", with: "-"))"
        if Bool.random(using: &rng) {
            url += "?order=\(text(&rng, length: 1...6))&lang=zh&x=\(Int.random(in: 0...99, using: &rng))"
        }
        return url
    }

    /// A random, complete set of fields for `layout`.
    static func fields(_ layout: SignatureLayout, _ rng: inout SeededGenerator) -> [String: String] {
        var fields: [String: String] = [:]
        for name in layout.fields {
            switch name {
            case "amount", "originAmount": fields[name] = amount(&rng)
            case "callbackUrl", "returnUrl": fields[name] = url(&rng)
            case "channelId", "channel": fields[name] = String(Int.random(in: 1...15, using: &rng))
            default: fields[name] = text(&rng)
            }
        }
        return fields
    }

    /// `s` with the character at a random position replaced by a different one.
    static func mutateOne(_ s: String, _ rng: inout SeededGenerator) -> String {
        var chars = Array(s)
        if chars.isEmpty { return "x" }
        let i = Int.random(in: 0..<chars.count, using: &rng)
        var replacement = alphabet.randomElement(using: &rng)!
        while replacement == chars[i] { replacement = alphabet.randomElement(using: &rng)! }
        chars[i] = replacement
        return String(chars)
    }
}

@Suite("Signature properties")
struct PropertyTests {
    static let seeds: [UInt64] = Array(1...200)

    @Test("sign then verify holds for random values of every layout", arguments: seeds)
    func roundTrip(seed: UInt64) throws {
        var rng = SeededGenerator(seed: seed)
        let secret = MerchantSecret(Generate.text(&rng, length: 8...32))
        for layout in SignatureLayout.allCases {
            let fields = Generate.fields(layout, &rng)
            let sign = try GatewaySignature.sign(layout, fields, secret: secret)
            #expect(sign.count == 32 && sign.allSatisfy { "0123456789abcdef".contains($0) })
            #expect(GatewaySignature.verify(layout, fields, signature: sign, secret: secret), "seed \(seed) \(layout)")
        }
    }

    @Test("changing any one character of any signed field, or of the signature, fails verification", arguments: seeds)
    func tampering(seed: UInt64) throws {
        var rng = SeededGenerator(seed: seed)
        let secret = MerchantSecret(Generate.text(&rng, length: 8...32))
        for layout in SignatureLayout.allCases {
            let fields = Generate.fields(layout, &rng)
            let sign = try GatewaySignature.sign(layout, fields, secret: secret)
            for name in layout.fields {
                var tampered = fields
                tampered[name] = Generate.mutateOne(fields[name]!, &rng)
                #expect(!GatewaySignature.verify(layout, tampered, signature: sign, secret: secret), "seed \(seed) \(layout).\(name)")
            }
            var chars = Array(sign)
            let i = Int.random(in: 0..<32, using: &rng)
            chars[i] = chars[i] == "0" ? "1" : "0"
            #expect(!GatewaySignature.verify(layout, fields, signature: String(chars), secret: secret), "seed \(seed) \(layout) sign")
            #expect(!GatewaySignature.verify(layout, fields, signature: String(sign.dropLast()), secret: secret))
        }
    }

    @Test("form encoding round-trips random values, Chinese text and URLs with query strings", arguments: seeds)
    func formRoundTrip(seed: UInt64) throws {
        var rng = SeededGenerator(seed: seed)
        let pairs = (0..<5).map { _ in (Generate.text(&rng), Bool.random(using: &rng) ? Generate.url(&rng) : Generate.text(&rng)) }
        let decoded = try FormURLEncoding.decode(FormURLEncoding.encode(pairs))
        #expect(decoded.map(\.name) == pairs.map(\.0))
        #expect(decoded.map(\.value) == pairs.map(\.1))
    }

    @Test("a signed callback parsed from its form verifies; tampered forms do not", arguments: Array(seeds.prefix(50)))
    func callbackForms(seed: UInt64) throws {
        var rng = SeededGenerator(seed: seed)
        let secret = MerchantSecret(Generate.text(&rng, length: 8...32))
        let f = Generate.fields(.depositCallback, &rng)
        let callback = DepositCallback(amount: f["amount"]!, appKey: f["appKey"]!, channel: f["channel"]!, mrn: f["mrn"]!, originAmount: f["originAmount"]!, secret: secret)
        let parsed = try DepositCallback(formBody: Array(callback.formBody.utf8))
        #expect(parsed == callback)
        try parsed.verify(appKey: f["appKey"]!, secret: secret)
        var tampered = parsed
        tampered.mrn = Generate.mutateOne(parsed.mrn, &rng)
        #expect(throws: CallbackRejection.badSignature) { try tampered.verify(appKey: f["appKey"]!, secret: secret) }
    }
}
