import Foundation
import Testing

@testable import GatewayProtocol

@Suite("JSON, forms and the gateway's answers")
struct CodingTests {
    @Test("JSON numbers keep their exact characters")
    func numbersKeepText() throws {
        let value = try JSONValue.parse(#"{"amount": 100.50, "n": -0.0e+10, "big": 123456789012345678901234567890}"#)
        #expect(value["amount"] == .number("100.50"))
        #expect(value["n"] == .number("-0.0e+10"))
        #expect(value["big"]?.numberText == "123456789012345678901234567890")
        #expect(JSONValue.object(["amount": .number("100.50")]).jsonText == #"{"amount":100.50}"#)
    }

    @Test("JSON strings: escapes, surrogate pairs, UTF-8 kept as it is on output")
    func strings() throws {
        let value = try JSONValue.parse(#"["a\"b\\c\/d\n", "\u4e2d\u6587", "\ud83d\ude00", "张三"]"#)
        #expect(value == .array([.string("a\"b\\c/d\n"), .string("中文"), .string("😀"), .string("张三")]))
        #expect(JSONValue.string("张三\"\n\u{1}").jsonText == #""张三\"\n\u0001""#)
        let roundTrip = try JSONValue.parse(value.encoded())
        #expect(roundTrip == value)
    }

    @Test("invalid JSON is refused with a position", arguments: [
        "", "{", "{\"a\":}", "[1,]", "{\"a\":1,}", "01", "1.", ".5", "-", "tru", "\"\\x\"", "\"\u{1}\"", "\"\\ud800\"", "{} x", "{\"a\" 1}", "[\"abc]",
    ])
    func invalid(_ text: String) {
        #expect(throws: JSONParseError.self) { try JSONValue.parse(text) }
    }

    @Test("deep nesting is refused")
    func depth() {
        let deep = String(repeating: "[", count: 100) + String(repeating: "]", count: 100)
        #expect(throws: JSONParseError.self) { try JSONValue.parse(deep) }
        #expect(throws: Never.self) { try JSONValue.parse(String(repeating: "[", count: 10) + String(repeating: "]", count: 10)) }
    }

    @Test("invalid UTF-8 inside a string is refused")
    func invalidUTF8() {
        #expect(throws: JSONParseError.self) { try JSONValue.parse([0x22, 0xC3, 0x28, 0x22]) }
    }

    @Test("form decoding: + is a space, %XX a byte, UTF-8 required")
    func formDecoding() throws {
        let pairs = try FormURLEncoding.decode("a=1+2&b=%E5%BC%A0%E4%B8%89&c=x%26y%3Dz&d=&e&&f=%2B")
        #expect(pairs.map(\.name) == ["a", "b", "c", "d", "e", "f"])
        #expect(pairs.map(\.value) == ["1 2", "张三", "x&y=z", "", "", "+"])
        #expect(throws: FormDecodingError.self) { try FormURLEncoding.decode("a=%E5%BC") }
        #expect(throws: FormDecodingError.self) { try FormURLEncoding.decode("a=%zz") }
        #expect(throws: FormDecodingError.self) { try FormURLEncoding.decode("a=%4") }
        #expect(FormURLEncoding.encode([("k", "a b&c=d/张")]) == "k=a+b%26c%3Dd%2F%E5%BC%A0")
        #expect(FormURLEncoding.percentEncode("a b") == "a%20b")
        #expect(FormURLEncoding.percentDecode("D-%E7%9F%AD+1") == "D-短+1")
    }

    @Test("deposit create answer: documented shape, keys in any case")
    func depositAnswer() throws {
        let a = try DepositCreateAnswer(json: Array(#"{"success":true,"errorMsg":"","payUrl":"/api/Pay?id=1&channel=2"}"#.utf8))
        #expect(a.success && a.payUrl == "/api/Pay?id=1&channel=2")
        let b = try DepositCreateAnswer(json: Array(#"{"Success":"false","ErrorMsg":"sign_error"}"#.utf8))
        #expect(!b.success && b.errorMsg == "sign_error")
        #expect(throws: GatewayAnswerError.self) { try DepositCreateAnswer(json: Array(#"{"success":true}"#.utf8)) }
        #expect(throws: GatewayAnswerError.self) { try DepositCreateAnswer(json: Array("<html>".utf8)) }
        #expect(throws: GatewayAnswerError.self) { try DepositCreateAnswer(json: Array("[1]".utf8)) }
    }

    @Test("payUrl is joined to the gateway base, absolute ones pass through")
    func payURL() {
        #expect(DepositCreateAnswer.absolutePayURL("/api/Pay?id=1", gatewayBaseURL: "https://pay.example.com") == "https://pay.example.com/api/Pay?id=1")
        #expect(DepositCreateAnswer.absolutePayURL("/api/Pay?id=1", gatewayBaseURL: "https://pay.example.com/") == "https://pay.example.com/api/Pay?id=1")
        #expect(DepositCreateAnswer.absolutePayURL("/api/Pay?id=1", gatewayBaseURL: "https://pay.example.com/gw") == "https://pay.example.com/gw/api/Pay?id=1")
        #expect(DepositCreateAnswer.absolutePayURL("https://cdn.example/pay?id=1", gatewayBaseURL: "https://pay.example.com") == "https://cdn.example/pay?id=1")
    }

    @Test("payout answer: known and unknown codes are kept")
    func payoutAnswer() throws {
        for code in GatewayResultCode.documentedErrors {
            let a = try PayoutCreateAnswer(json: Array(#"{"error":"\#(code.rawValue)","errorMessage":"x"}"#.utf8))
            #expect(a.error == code && a.error.isDocumented && !a.error.isSuccess)
        }
        let ok = try PayoutCreateAnswer(json: Array(#"{"Error":"success"}"#.utf8))
        #expect(ok.error.isSuccess)
        let odd = try PayoutCreateAnswer(json: Array(#"{"error":"rate_limited","errorMessage":"slow down"}"#.utf8))
        #expect(odd.error.rawValue == "rate_limited" && !odd.error.isDocumented)
        #expect(throws: GatewayAnswerError.self) { try PayoutCreateAnswer(json: Array(#"{"errorMessage":"x"}"#.utf8)) }
    }

    @Test("query answer: Mrn in any case, status as number or numeric string")
    func queryAnswer() throws {
        let a = try QueryAnswer(json: Array(#"{"error":"success","result":{"Mrn":"D1","status":1}}"#.utf8))
        #expect(a.mrn == "D1" && a.status == .paid)
        let b = try QueryAnswer(json: Array(#"{"ERROR":"success","Result":{"mrn":"D2","Status":"2"}}"#.utf8))
        #expect(b.mrn == "D2" && b.status == .failed)
        let c = try QueryAnswer(json: Array(#"{"error":"success","result":{"Mrn":"D3","status":"0"}}"#.utf8))
        #expect(c.status == .waiting)
        let d = try QueryAnswer(json: Array(#"{"error":"success","result":{"Mrn":"D4","status":7}}"#.utf8))
        #expect(d.status == .other(7))
        let e = try QueryAnswer(json: Array(#"{"error":"object_not_found","result":null}"#.utf8))
        #expect(e.error == .objectNotFound && e.status == nil)
        #expect(throws: GatewayAnswerError.self) { try QueryAnswer(json: Array(#"{"error":"success","result":{"Mrn":"D5","status":"paid"}}"#.utf8)) }
        #expect(throws: GatewayAnswerError.self) { try QueryAnswer(json: Array(#"{"error":"success","result":{"Mrn":"D5"}}"#.utf8)) }
        #expect(String(decoding: a.encoded(), as: UTF8.self) == #"{"error":"success","result":{"Mrn":"D1","status":1}}"#)
    }

    @Test("deposit request bodies: amount and channelId are JSON numbers with the signed characters; payer unsigned")
    func depositBodies() throws {
        let secret = MerchantSecret("k")
        let request = DepositRequest(amount: DepositAmount("100.50")!, appKey: "app", callbackUrl: "https://cb.example/c", channelId: 2, mrn: "D1", returnUrl: "https://r.example/?a=1&b=2", payer: "张三")
        let json = try JSONValue.parse(request.jsonBody(secret: secret))
        #expect(json["amount"] == .number("100.50"))
        #expect(json["channelId"] == .number("2"))
        #expect(json["payer"] == .string("张三"))
        #expect(json["sign"]?.stringValue == request.signature(secret: secret))
        var withOtherPayer = request
        withOtherPayer.payer = "李四"
        #expect(withOtherPayer.signature(secret: secret) == request.signature(secret: secret))
        let form = request.formFields(secret: secret)
        #expect(form.map(\.name) == ["amount", "appKey", "callbackUrl", "channelId", "mrn", "returnUrl", "sign", "payer"])
    }

    @Test("HTML escaping covers element content and quoted attributes")
    func html() {
        #expect(HTMLText.escape(#"<a href="x">Tom & 'Jerry'</a> 张三"#) == "&lt;a href=&quot;x&quot;&gt;Tom &amp; &#39;Jerry&#39;&lt;/a&gt; 张三")
    }

    @Test("query strings are percent-encoded and signed")
    func queryString() {
        let q = OrderQuery(kind: .deposit, appKey: "app", mrn: "D 短", callback: true)
        let s = q.pathAndQuery(secret: MerchantSecret("k"))
        #expect(s.hasPrefix("/api/Payments/Query?appKey=app&mrn=D%20%E7%9F%AD&sign="))
        #expect(s.hasSuffix("&callback=true"))
    }
}

@Suite("Callbacks")
struct CallbackTests {
    let secret = MerchantSecret("9f2c4a7e1b3d5f60")

    @Test("the vector's deposit callback parses from its form and verifies")
    func depositCallback() throws {
        let body = "amount=99.98&appKey=mch_10086&channel=2&mrn=D20261128000001&originAmount=100&sign=6a275bb55595c698461470a9bd21d5d7"
        let callback = try DepositCallback(formBody: Array(body.utf8))
        try callback.verify(appKey: "mch_10086", secret: secret)
        #expect(callback.paidMinorUnits == 9998 && callback.originMinorUnits == 10000 && callback.channelId == 2)
    }

    @Test("the vector's payout callback verifies; each tampering is refused with its reason")
    func payoutTampering() throws {
        let good = "amount=500&appKey=mch_10086&mrn=P20261128000001&sign=a02d4f41023c7ad390d44146fb1730d8"
        try PayoutCallback(formBody: Array(good.utf8)).verify(appKey: "mch_10086", secret: secret)
        let cases: [(String, CallbackRejection)] = [
            (good.replacingOccurrences(of: "amount=500", with: "amount=501"), .badSignature),
            (good.replacingOccurrences(of: "P20261128000001", with: "P20261128000002"), .badSignature),
            (good.replacingOccurrences(of: "sign=a02d", with: "sign=b02d"), .badSignature),
            (good.replacingOccurrences(of: "&mrn=P20261128000001", with: ""), .missingField("mrn")),
            (good.replacingOccurrences(of: "&sign=a02d4f41023c7ad390d44146fb1730d8", with: ""), .missingField("sign")),
            (good + "&amount=1", .duplicateField("amount")),
            ("amount=%zz", .malformedBody("invalid percent-encoding")),
        ]
        for (body, expected) in cases {
            #expect(throws: expected, "\(body)") {
                try PayoutCallback(formBody: Array(body.utf8)).verify(appKey: "mch_10086", secret: secret)
            }
        }
        // Correctly signed, but for another merchant.
        let other = PayoutCallback(amount: "500", appKey: "mch_other", mrn: "P1", secret: secret)
        #expect(throws: CallbackRejection.wrongAppKey) { try other.verify(appKey: "mch_10086", secret: secret) }
        // A signature taken from another order does not fit this one.
        let a = PayoutCallback(amount: "500", appKey: "mch_10086", mrn: "P1", secret: secret)
        var b = PayoutCallback(amount: "500", appKey: "mch_10086", mrn: "P2", secret: secret)
        b.sign = a.sign
        #expect(throws: CallbackRejection.badSignature) { try b.verify(appKey: "mch_10086", secret: secret) }
        // Signed correctly but the amount is not an amount.
        let weird = PayoutCallback(amount: "five", appKey: "mch_10086", mrn: "P1", secret: secret)
        #expect(throws: CallbackRejection.invalidField("amount", "not an amount in yuan")) { try weird.verify(appKey: "mch_10086", secret: secret) }
    }

    @Test("form values with + and %XX decode before verification")
    func encodedValues() throws {
        let callback = DepositCallback(amount: "10.00", appKey: "mch 10086", channel: "1", mrn: "D-短&1", originAmount: "10", secret: secret)
        #expect(callback.formBody.contains("appKey=mch+10086"))
        let parsed = try DepositCallback(formBody: Array(callback.formBody.utf8))
        #expect(parsed.mrn == "D-短&1")
        try parsed.verify(appKey: "mch 10086", secret: secret)
    }
}
