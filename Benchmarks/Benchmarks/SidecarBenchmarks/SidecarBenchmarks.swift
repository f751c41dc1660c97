import Benchmark
import GatewayProtocol
@_spi(Benchmarks) import Sidecar
import Webhooks

/// Time and allocations per operation on the paths every payment call or callback takes.
let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(
        metrics: [.wallClock, .cpuTotal, .mallocCountTotal, .throughput],
        maxDuration: .seconds(2),
        maxIterations: 1_000_000
    )
    let secret = MerchantSecret("bench-merchant-secret-0123456789")
    let fields: [SignatureLayout: [String: String]] = [
        .depositRequest: ["amount": "100.50", "appKey": "mch_10086", "callbackUrl": "https://cb.shop.example/callbacks/deposit",
                          "channelId": "2", "mrn": "D-20261129-000001", "returnUrl": "https://shop.example/return?order=1"],
        .depositCallback: ["amount": "100.00", "appKey": "mch_10086", "channel": "2", "mrn": "D-20261129-000001", "originAmount": "100"],
        .depositQuery: ["appKey": "mch_10086", "mrn": "D-20261129-000001"],
        .payoutRequest: ["accountName": "张三", "accountNumber": "6222020200112233445", "amount": "500", "appKey": "mch_10086",
                         "bankName": "中国工商银行", "callbackUrl": "https://cb.shop.example/callbacks/payout", "mrn": "P-20261129-000001"],
        .payoutCallback: ["amount": "500", "appKey": "mch_10086", "mrn": "P-20261129-000001"],
        .payoutQuery: ["appKey": "mch_10086", "mrn": "P-20261129-000001"],
    ]
    for layout in SignatureLayout.allCases {
        let values = fields[layout]!
        Benchmark("sign \(layout.rawValue)") { benchmark in
            for _ in benchmark.scaledIterations {
                blackHole(try? GatewaySignature.sign(layout, values, secret: secret))
            }
        }
    }

    let depositCallback = Array(DepositCallback(amount: "100.00", appKey: "mch_10086", channel: "2", mrn: "D-20261129-000001",
                                                originAmount: "100", secret: secret).formBody.utf8)
    Benchmark("callback parse + verify (deposit)") { benchmark in
        for _ in benchmark.scaledIterations {
            let callback = try DepositCallback(formBody: depositCallback)
            try callback.verify(appKey: "mch_10086", secret: secret)
            blackHole(callback)
        }
    }
    let payoutCallback = Array(PayoutCallback(amount: "500", appKey: "mch_10086", mrn: "P-20261129-000001", secret: secret).formBody.utf8)
    Benchmark("callback parse + verify (payout)") { benchmark in
        for _ in benchmark.scaledIterations {
            let callback = try PayoutCallback(formBody: payoutCallback)
            try callback.verify(appKey: "mch_10086", secret: secret)
            blackHole(callback)
        }
    }

    let depositBody = Array(#"{"mrn":"D-20261129-000001","amount":"100.50","channelId":2,"returnUrl":"https://shop.example/return?order=1"}"#.utf8)
    Benchmark("request decode + validate (deposit)") { benchmark in
        for _ in benchmark.scaledIterations {
            precondition(RequestValidation.deposit(depositBody))
        }
    }
    let payoutBody = Array(#"{"mrn":"P-20261129-000001","amount":500,"bankName":"中国工商银行","accountName":"张三","accountNumber":"6222020200112233445"}"#.utf8)
    Benchmark("request decode + validate (payout)") { benchmark in
        for _ in benchmark.scaledIterations {
            precondition(RequestValidation.payout(payoutBody))
        }
    }

    let signer = WebhookSigner(secrets: [WebhookSecret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")!])
    let webhookBody = Array(#"{"type":"deposit.succeeded","timestamp":"2026-11-29T00:00:00.000Z","data":{"mrn":"D-20261129-000001","amount":"100.00","originAmount":"100","channelId":2,"source":"callback"}}"#.utf8)
    Benchmark("Standard Webhooks sign") { benchmark in
        for _ in benchmark.scaledIterations {
            blackHole(signer.headers(id: "evt_01a224b757a25ca1621b1d7ef7c1", timestamp: 1_795_900_000, body: webhookBody))
        }
    }
}
