import Foundation
import Testing

@testable import GatewayProtocol

/// The worked examples in test-vectors.json (a copy of ../shared/spec/test-vectors.json).
struct Vector: Sendable, CustomTestStringConvertible {
    var kind: String
    var secret: String
    var fields: [String: String]
    var signString: String
    var sign: String
    var testDescription: String { "\(kind) \(fields["mrn"] ?? "")" }
}

enum VectorFile {
    nonisolated(unsafe) static let json: [String: Any] = {
        let url = Bundle.module.url(forResource: "test-vectors", withExtension: "json", subdirectory: "Resources")!
        let data = try! Data(contentsOf: url)
        return try! JSONSerialization.jsonObject(with: data) as! [String: Any]
    }()

    static let vectors: [Vector] = (json["vectors"] as! [[String: Any]]).map { v in
        Vector(kind: v["kind"] as! String, secret: v["secret"] as! String, fields: v["fields"] as! [String: String], signString: v["signString"] as! String, sign: v["sign"] as! String)
    }

    static let orders: [String: [String]] = json["orders"] as! [String: [String]]
}

@Suite("Signature vectors")
struct SignatureVectorTests {
    @Test("every vector's sign string and digest", arguments: VectorFile.vectors)
    func vector(_ v: Vector) throws {
        let layout = try #require(SignatureLayout(rawValue: v.kind))
        let secret = MerchantSecret(v.secret)
        #expect(try GatewaySignature.maskedSignString(layout, v.fields) == v.signString.replacingOccurrences(of: "&key=\(v.secret)", with: "&key=***"))
        #expect(try GatewaySignature.sign(layout, v.fields, secret: secret) == v.sign)
        #expect(GatewaySignature.verify(layout, v.fields, signature: v.sign, secret: secret))
        #expect(GatewaySignature.verify(layout, v.fields, signature: v.sign.uppercased(), secret: secret))
        #expect(!GatewaySignature.verify(layout, v.fields, signature: v.sign, secret: MerchantSecret(v.secret + "x")))
    }

    @Test("every layout covers all six messages with the documented field order")
    func layouts() {
        #expect(Set(SignatureLayout.allCases.map(\.rawValue)) == Set(VectorFile.orders.keys))
        for layout in SignatureLayout.allCases {
            #expect(layout.fields == VectorFile.orders[layout.rawValue], "\(layout)")
            #expect(layout.fields == layout.fields.sorted(), "documented order is ASCII order")
        }
        #expect(Set(VectorFile.vectors.map(\.kind)) == Set(SignatureLayout.allCases.map(\.rawValue)))
    }

    @Test("typed messages sign exactly like the vectors")
    func typedMessages() throws {
        let secret = MerchantSecret("9f2c4a7e1b3d5f60")
        let v = VectorFile.vectors.first { $0.kind == "deposit_request" }!
        let deposit = DepositRequest(
            amount: try #require(DepositAmount(v.fields["amount"]!)), appKey: v.fields["appKey"]!, callbackUrl: v.fields["callbackUrl"]!,
            channelId: Int(v.fields["channelId"]!)!, mrn: v.fields["mrn"]!, returnUrl: v.fields["returnUrl"]!, payer: "张三"
        )
        #expect(deposit.signature(secret: secret) == v.sign)

        let p = VectorFile.vectors.first { $0.kind == "payout_request" }!
        let payout = PayoutRequest(
            accountName: p.fields["accountName"]!, accountNumber: p.fields["accountNumber"]!, amount: try #require(PayoutAmount(p.fields["amount"]!)),
            appKey: p.fields["appKey"]!, bankName: p.fields["bankName"]!, callbackUrl: p.fields["callbackUrl"]!, mrn: p.fields["mrn"]!
        )
        #expect(payout.signature(secret: secret) == p.sign)

        let q = VectorFile.vectors.first { $0.kind == "payout_query" }!
        #expect(OrderQuery(kind: .payout, appKey: q.fields["appKey"]!, mrn: q.fields["mrn"]!).signature(secret: secret) == q.sign)
        let dq = VectorFile.vectors.first { $0.kind == "deposit_query" }!
        #expect(OrderQuery(kind: .deposit, appKey: dq.fields["appKey"]!, mrn: dq.fields["mrn"]!).signature(secret: secret) == dq.sign)

        let c = VectorFile.vectors.first { $0.kind == "deposit_callback" }!
        let callback = DepositCallback(amount: c.fields["amount"]!, appKey: c.fields["appKey"]!, channel: c.fields["channel"]!, mrn: c.fields["mrn"]!, originAmount: c.fields["originAmount"]!, secret: secret)
        #expect(callback.sign == c.sign)
        let pc = VectorFile.vectors.first { $0.kind == "payout_callback" }!
        #expect(PayoutCallback(amount: pc.fields["amount"]!, appKey: pc.fields["appKey"]!, mrn: pc.fields["mrn"]!, secret: secret).sign == pc.sign)
    }

    @Test("a missing signed field is an error naming it, not a silent empty value")
    func missingField() {
        #expect(throws: MissingSignedField(layout: .payoutCallback, field: "mrn")) {
            try GatewaySignature.sign(.payoutCallback, ["amount": "1", "appKey": "a"], secret: MerchantSecret("s"))
        }
        #expect(!GatewaySignature.verify(.payoutCallback, ["amount": "1", "appKey": "a"], signature: String(repeating: "0", count: 32), secret: MerchantSecret("s")))
    }

    @Test("the secret never prints")
    func secretRedacted() {
        let secret = MerchantSecret("super-secret-value")
        #expect("\(secret)" == "<redacted>")
        #expect(String(reflecting: secret) == "<redacted>")
        var dumped = ""
        dump(secret, to: &dumped)
        #expect(!dumped.contains("super-secret-value"))
        #expect(!String(describing: [secret]).contains("super"))
        #expect(!(try! GatewaySignature.maskedSignString(.depositQuery, ["appKey": "a", "mrn": "m"])).contains("super"))
    }

    @Test("constant-time comparison")
    func constantTime() {
        #expect(constantTimeEquals(Array("abc".utf8), Array("abc".utf8)))
        #expect(!constantTimeEquals(Array("abc".utf8), Array("abd".utf8)))
        #expect(!constantTimeEquals(Array("abc".utf8), Array("abcd".utf8)))
        #expect(constantTimeEquals([], []))
    }
}
