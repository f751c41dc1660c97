import Testing

@testable import GatewayProtocol

@Suite("Field rules")
struct FieldRuleTests {
    @Test("deposit amounts: > 0, at most 2 decimals, plain digits, text kept exactly",
          arguments: ["1", "100", "88.50", "0.01", "0.5", "999999999999.99", "10.10"])
    func validDepositAmounts(_ text: String) throws {
        let amount = try #require(DepositAmount(text))
        #expect(amount.text == text)
    }

    @Test("deposit amounts refused",
          arguments: ["", "0", "0.00", "-1", "+1", "01", "00.5", "1.", ".5", "1.234", "1e3", "1E2", " 1", "1 ", "1,00", "１", "NaN", "1000000000000", "0x10"])
    func invalidDepositAmounts(_ text: String) {
        #expect(DepositAmount(text) == nil)
        #expect(DepositAmount.problem(text) != nil)
    }

    @Test("deposit amounts in fen, without floating point")
    func minorUnits() {
        #expect(DepositAmount("88.50")?.minorUnits == 8850)
        #expect(DepositAmount("88.5")?.minorUnits == 8850)
        #expect(DepositAmount("0.01")?.minorUnits == 1)
        #expect(DepositAmount("999999999999.99")?.minorUnits == 99_999_999_999_999)
        #expect(DepositAmount("0.1")?.minorUnits == 10)
        #expect(AmountText.yuanText(fen: 9998) == "99.98")
        #expect(AmountText.yuanText(fen: 5) == "0.05")
        #expect(AmountText.yuanText(fen: 100) == "1.00")
    }

    @Test("callback amounts are read leniently: the gateway may print 500.00 for 500")
    func lenientAmounts() {
        #expect(AmountText.parse("500.00", maxDecimals: 2, strict: false) == 50000)
        #expect(AmountText.parse("500.000", maxDecimals: 2, strict: false) == 50000)
        #expect(AmountText.parse("0500", maxDecimals: 2, strict: false) == 50000)
        #expect(AmountText.parse("500.001", maxDecimals: 2, strict: false) == nil)
        #expect(AmountText.parse("abc", maxDecimals: 2, strict: false) == nil)
    }

    @Test("payout amounts: positive whole yuan", arguments: ["1", "500", "999999999999"])
    func validPayout(_ text: String) throws {
        #expect(try #require(PayoutAmount(text)).text == text)
    }

    @Test("payout amounts refused", arguments: ["0", "1.0", "1.5", "-5", "05", "1e2", "", " 5", "5 "])
    func invalidPayout(_ text: String) {
        #expect(PayoutAmount(text) == nil)
    }

    @Test("mrn: 1 to 64 characters, no control characters, no & or =")
    func mrn() {
        #expect(FieldRules.mrn("D20261128000001") == nil)
        #expect(FieldRules.mrn("D-2026-11-28-短") == nil)
        #expect(FieldRules.mrn(String(repeating: "a", count: 64)) == nil)
        #expect(FieldRules.mrn(String(repeating: "a", count: 65))?.field == "mrn")
        #expect(FieldRules.mrn("") != nil)
        #expect(FieldRules.mrn("a&b") != nil)
        #expect(FieldRules.mrn("a=b") != nil)
        #expect(FieldRules.mrn("a\nb") != nil)
        #expect(FieldRules.mrn("a\u{7F}b") != nil)
        #expect(FieldRules.mrn("a\u{85}b") != nil)
    }

    @Test("& and = are refused only where the contract says", arguments: ["mrn", "bankName", "accountName", "accountNumber"])
    func delimiterFree(_ field: String) {
        #expect(FieldRules.text(field, "A&B") != nil)
        #expect(FieldRules.text(field, "A=B") != nil)
        #expect(FieldRules.text(field, "中国工商银行") == nil)
        #expect(FieldRules.text(field, "tab\there") != nil)
    }

    @Test("payer may hold & (it is not signed)")
    func payerAllowsAmpersand() {
        #expect(FieldRules.text("payer", "Tom & Jerry") == nil)
    }

    @Test("URLs must be absolute http(s)")
    func urls() {
        #expect(FieldRules.absoluteURL("returnUrl", "https://shop.example/return?order=1&lang=zh") == nil)
        #expect(FieldRules.absoluteURL("returnUrl", "http://127.0.0.1:8081/callbacks/deposit") == nil)
        #expect(FieldRules.absoluteURL("returnUrl", "HTTPS://shop.example") == nil)
        for bad in ["/relative", "ftp://x.example/", "https://", "shop.example/x", "javascript:alert(1)", "https://a b.example/", "http://x\n.example", ""] {
            #expect(FieldRules.absoluteURL("returnUrl", bad) != nil, "\(bad)")
        }
    }

    @Test("URL parts")
    func urlParts() throws {
        let p = try #require(URLParts("https://user@pay.example.com:8443/base/path?x=1"))
        #expect(p.scheme == "https")
        #expect(p.host == "pay.example.com")
        #expect(p.port == 8443)
        #expect(p.pathAndQuery == "/base/path?x=1")
        #expect(try #require(URLParts("http://[::1]:9090")).host == "[::1]")
        #expect(URLParts("http://host:99999/") == nil)
    }

    @Test("channel table: 15 channels with names and labels")
    func channels() {
        #expect(Channel.all.count == 15)
        #expect(Channel.all.map(\.id) == Array(1...15))
        #expect(Channel.withID(1)?.name == "微信")
        #expect(Channel.withID(1)?.label == "WeChat")
        #expect(Channel.withID(14)?.name == "支付宝固码")
        #expect(Channel.withID(0) == nil)
        #expect(Channel.withID(16) == nil)
        #expect(Set(Channel.all.map(\.label)).count == 15)
    }
}
