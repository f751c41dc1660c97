import Crypto
import CurlHTTP
import Foundation
import GatewayProtocol
import GatewaySimulator
import Synchronization
import TestSupport

/// The merchant the test simulators know.
enum Merchant {
    static let appKey = "mch_test"
    static let secret = "s3cr3t-for-tests"
}

/// Signs the way the gateway document says, written out here from the document and not through the code
/// under test: MD5 over "k1=v1&...&key=SECRET", lowercase hex.
func independentSign(_ pairs: [(String, String)], secret: String = Merchant.secret) -> String {
    let text = pairs.map { "\($0.0)=\($0.1)" }.joined(separator: "&") + "&key=\(secret)"
    return Insecure.MD5.hash(data: Array(text.utf8)).map { String(format: "%02x", $0) }.joined()
}

/// Percent-encodes a form value (application/x-www-form-urlencoded).
func formEncode(_ pairs: [(String, String)]) -> String {
    var allowed = CharacterSet.alphanumerics
    allowed.insert(charactersIn: "-._~")
    return pairs.map { "\($0.0)=\($0.1.addingPercentEncoding(withAllowedCharacters: allowed)!)" }.joined(separator: "&")
}

func formDecode(_ text: String) -> [String: String] {
    var result: [String: String] = [:]
    for part in text.split(separator: "&") {
        let kv = part.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
        let key = String(kv[0]).replacingOccurrences(of: "+", with: " ").removingPercentEncoding!
        let value = kv.count > 1 ? String(kv[1]).replacingOccurrences(of: "+", with: " ").removingPercentEncoding! : ""
        result[key] = value
    }
    return result
}

func jsonObject(_ response: CurlResponse) throws -> [String: Any] {
    try JSONSerialization.jsonObject(with: Data(response.body)) as? [String: Any] ?? [:]
}

func jsonArray(_ response: CurlResponse) throws -> [[String: Any]] {
    try JSONSerialization.jsonObject(with: Data(response.body)) as? [[String: Any]] ?? []
}

/// A running simulator, an HTTP client, and a callback receiver whose answers a test scripts.
struct SimHarness {
    let simulator: GatewaySimulator
    let base: String
    let client: CurlClient
    let receiver: TestHTTPServer
    let receiverAnswers: AnswerScript

    var callbackURL: String { "\(receiver.baseURL)/callbacks" }

    func post(_ path: String, json: String) async throws -> CurlResponse {
        try await client.execute(CurlRequest(method: "POST", url: base + path, headers: [("Content-Type", "application/json")], body: Array(json.utf8)))
    }

    func post(_ path: String, form: String) async throws -> CurlResponse {
        try await client.execute(CurlRequest(method: "POST", url: base + path, headers: [("Content-Type", "application/x-www-form-urlencoded")], body: Array(form.utf8)))
    }

    func get(_ path: String) async throws -> CurlResponse {
        try await client.execute(CurlRequest(url: base + path))
    }

    func put(_ path: String, json: String) async throws -> CurlResponse {
        try await client.execute(CurlRequest(method: "PUT", url: base + path, headers: [("Content-Type", "application/json")], body: Array(json.utf8)))
    }

    func delete(_ path: String) async throws -> CurlResponse {
        try await client.execute(CurlRequest(method: "DELETE", url: base + path))
    }

    /// Creates a deposit through `/api/Pay/Create`, signed independently. `amount` is written as a JSON number.
    func createDeposit(mrn: String, amount: String = "100.50", channelId: Int = 2, returnUrl: String = "https://shop.example/return?o=1&lang=zh", sign: String? = nil, appKey: String = Merchant.appKey) async throws -> CurlResponse {
        let fields = [("amount", amount), ("appKey", appKey), ("callbackUrl", callbackURL), ("channelId", String(channelId)), ("mrn", mrn), ("returnUrl", returnUrl)]
        let signature = sign ?? independentSign(fields)
        let json = #"{"amount":\#(amount),"appKey":"\#(appKey)","callbackUrl":"\#(callbackURL)","channelId":\#(channelId),"mrn":"\#(mrn)","returnUrl":"\#(returnUrl)","sign":"\#(signature)"}"#
        return try await post("/api/Pay/Create", json: json)
    }

    /// Creates a payout through `/api/Payouts/Create`, signed independently.
    func createPayout(mrn: String, amount: String = "500", sign: String? = nil, appKey: String = Merchant.appKey) async throws -> CurlResponse {
        let fields = [("accountName", "张三"), ("accountNumber", "6222020200112233445"), ("amount", amount), ("appKey", appKey), ("bankName", "中国工商银行"), ("callbackUrl", callbackURL), ("mrn", mrn)]
        let signature = sign ?? independentSign(fields)
        let json = #"{"accountName":"张三","accountNumber":"6222020200112233445","amount":\#(amount),"appKey":"\#(appKey)","bankName":"中国工商银行","callbackUrl":"\#(callbackURL)","mrn":"\#(mrn)","sign":"\#(signature)"}"#
        return try await post("/api/Payouts/Create", json: json)
    }

    func query(_ kind: String, mrn: String, callback: Bool = false, sign: String? = nil) async throws -> CurlResponse {
        let signature = sign ?? independentSign([("appKey", Merchant.appKey), ("mrn", mrn)])
        let path = kind == "deposit" ? "/api/Payments/Query" : "/api/Payouts/Query"
        return try await get("\(path)?\(formEncode([("appKey", Merchant.appKey), ("mrn", mrn), ("sign", signature), ("callback", String(callback))]))")
    }

    /// Callbacks the receiver got, decoded.
    var callbacks: [[String: String]] { receiver.requests.map { formDecode($0.bodyText) } }
}

func withSimulator<R: Sendable>(
    _ configure: (inout SimulatorConfiguration) -> Void = { _ in },
    _ body: (SimHarness) async throws -> R
) async throws -> R {
    var configuration = SimulatorConfiguration(appKey: Merchant.appKey, secretKey: MerchantSecret(Merchant.secret))
    configuration.port = 0
    configuration.callbackRetrySchedule = [.milliseconds(50), .milliseconds(50), .milliseconds(50)]
    configure(&configuration)
    let answers = AnswerScript(fallback: TestHTTPResponse(text: "success"))
    let receiver = try await TestHTTPServer.start { _ in answers.next() }
    var clientConfiguration = CurlClient.Configuration()
    clientConfiguration.proxy = .none
    let result = try await GatewaySimulator.withRunning(configuration) { simulator in
        let base = await simulator.baseURL()
        return try await CurlClient.withClient(configuration: clientConfiguration) { client in
            try await body(SimHarness(simulator: simulator, base: base, client: client, receiver: receiver, receiverAnswers: answers))
        }
    }
    try await receiver.stop()
    return result
}
