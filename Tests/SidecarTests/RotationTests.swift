import Crypto
import CurlHTTP
import Foundation
import GatewayProtocol
import Sidecar
import Synchronization
import TestSupport
import Testing
import Webhooks

/// Standard Webhooks' v1 signature written out from the specification, independent of the code under test.
func independentWebhookSignature(secret: String, id: String, timestamp: String, body: [UInt8]) -> String {
    let key = SymmetricKey(data: Data(base64Encoded: String(secret.dropFirst("whsec_".count)))!)
    let mac = HMAC<SHA256>.authenticationCode(for: Array("\(id).\(timestamp).".utf8) + body, using: key)
    return "v1," + Data(mac).base64EncodedString()
}

/// The signature of a page-mode deposit form, computed independently.
func pageFormSignature(_ fields: [String: String], secret: String) -> String {
    independentSign(["amount", "appKey", "callbackUrl", "channelId", "mrn", "returnUrl"].map { ($0, fields[$0] ?? "") }, secret: secret)
}

/// Secret files in a temporary folder, as Docker or Kubernetes would mount them.
struct SecretFiles {
    let folder: URL
    var merchant: URL { folder.appendingPathComponent("secret_key") }
    var webhook: URL { folder.appendingPathComponent("webhook_secret") }
    var token: URL { folder.appendingPathComponent("api_token") }

    init() throws {
        folder = try temporaryFolder("secrets")
    }

    func write(merchant: String, webhook: String, token: String) throws {
        // Rename into place, as a Kubernetes secret update does: a reader never sees half a file.
        for (url, value) in [(self.merchant, merchant), (self.webhook, webhook), (self.token, token)] {
            let temporary = folder.appendingPathComponent(".\(url.lastPathComponent).new")
            try "\(value)\n".write(to: temporary, atomically: false, encoding: .utf8)
            _ = rename(temporary.path, url.path)
        }
    }

    /// The settings that read the three secrets from these files.
    var settings: [String: String] {
        [
            "PAYSIDECAR_SECRET_KEY": "", "PAYSIDECAR_SECRET_KEY_FILE": merchant.path,
            "PAYSIDECAR_WEBHOOK_SECRET": "", "PAYSIDECAR_WEBHOOK_SECRET_FILE": webhook.path,
            "PAYSIDECAR_API_TOKEN_FILE": token.path,
        ]
    }
}

/// A clock tests move by hand.
final class ManualClock: Sendable {
    private let offset = Mutex<Duration>(.zero)
    private let origin = ContinuousClock.now
    var now: ContinuousClock.Instant { origin + offset.withLock { $0 } }
    func advance(_ by: Duration) { offset.withLock { $0 += by } }
}

@Suite("Secret rotation")
struct RotationTests {
    static let newSecret = "rotated-merchant-secret-77ab"
    static let newWebhookSecret = "whsec_" + Data((0..<32).map { UInt8($0 * 7 % 251) }).base64EncodedString()
    static let newToken = "rotated-api-token-5150"

    @Test("a replaced secret stays valid for the grace period only: verification, webhook signatures, API tokens")
    func gracePeriod() {
        let clock = ManualClock()
        let old = SecretSet(merchant: MerchantSecret("m1"), webhook: WebhookSecret(TestMerchant.webhookSecret)!, apiToken: Secret("t1"))
        let store = SecretStore(old, grace: .seconds(60), now: { clock.now })
        #expect(store.merchantVerifying == [MerchantSecret("m1")])
        #expect(store.webhookSigner?.secrets.count == 1)
        let new = SecretSet(merchant: MerchantSecret("m2"), webhook: WebhookSecret(Self.newWebhookSecret)!, apiToken: Secret("t2"))
        let change = store.replace(with: new)
        #expect(change == SecretChange(merchant: true, webhook: true, apiToken: true))
        #expect("\(change)" == "merchant secret, webhook secret, API token")
        #expect(store.merchantSigning == MerchantSecret("m2"), "new calls are signed with the new secret at once")
        #expect(store.merchantVerifying == [MerchantSecret("m2"), MerchantSecret("m1")])
        #expect(store.webhookSigner?.secrets == [WebhookSecret(Self.newWebhookSecret)!, WebhookSecret(TestMerchant.webhookSecret)!])
        #expect(store.apiTokens == [Secret("t2"), Secret("t1")])
        clock.advance(.seconds(59))
        #expect(store.merchantVerifying.count == 2)
        clock.advance(.seconds(2))
        #expect(store.merchantVerifying == [MerchantSecret("m2")])
        #expect(store.webhookSigner?.secrets == [WebhookSecret(Self.newWebhookSecret)!])
        #expect(store.apiTokens == [Secret("t2")])
        #expect(store.replace(with: new).isEmpty, "the same secrets again change nothing")
    }

    @Test("reload: new secrets sign at once, the previous ones stay valid for the grace period, webhooks carry both signatures")
    func reloadInProcess() async throws {
        let files = try SecretFiles()
        try files.write(merchant: TestMerchant.secret, webhook: TestMerchant.webhookSecret, token: TestMerchant.apiToken)
        try await withSidecar(settings: files.settings) { (e2e: E2E) async throws in
            let old = [("Authorization", "Bearer \(TestMerchant.apiToken)"), ("Content-Type", "application/json")]
            let new = [("Authorization", "Bearer \(Self.newToken)"), ("Content-Type", "application/json")]
            try files.write(merchant: Self.newSecret, webhook: Self.newWebhookSecret, token: Self.newToken)
            // (The file watcher may see the new files first: then this reload finds nothing left to change.)
            _ = try e2e.server.reloadSecrets(trigger: "test").get()
            #expect(e2e.server.secrets.current == SecretSet(merchant: MerchantSecret(Self.newSecret), webhook: WebhookSecret(Self.newWebhookSecret),
                                                            apiToken: Secret(Self.newToken)))

            // New page forms are signed with the new merchant secret.
            let page = try await e2e.post("/v1/deposits", json: #"{"mrn":"D-rot-page","amount":"12.5","channelId":1,"returnUrl":"https://shop.example/","mode":"page"}"#, headers: new)
            #expect(page.status == 201)
            let fields = try #require((try object(page)["form"] as? [String: Any])?["fields"] as? [String: String])
            #expect(fields["sign"] == pageFormSignature(fields, secret: Self.newSecret))
            // The previous token still opens the API during the grace period.
            #expect(try await e2e.get("/v1/channels", headers: old).status == 200)
            #expect(try await e2e.get("/v1/channels", headers: [("Authorization", "Bearer neither")]).status == 401)

            // Callbacks signed with either secret are accepted; with another, refused.
            #expect(try await e2e.callback("payout", payoutCallbackForm(mrn: "P-rot-old")).bodyText == "success")
            let fieldsNew = [("amount", "500"), ("appKey", TestMerchant.appKey), ("mrn", "P-rot-new")]
            #expect(try await e2e.callback("payout", formBody(fieldsNew + [("sign", independentSign(fieldsNew, secret: Self.newSecret))])).bodyText == "success")
            let fieldsOther = [("amount", "500"), ("appKey", TestMerchant.appKey), ("mrn", "P-rot-x")]
            #expect(try await e2e.callback("payout", formBody(fieldsOther + [("sign", independentSign(fieldsOther, secret: "other"))])).status == 401)

            // Webhooks carry two signatures: the new secret's first, then the previous one's.
            #expect(await eventually { e2e.receiver.requests.count == 2 })
            for request in e2e.receiver.requests {
                let id = try #require(request.header("webhook-id"))
                let timestamp = try #require(request.header("webhook-timestamp"))
                let signatures = try #require(request.header("webhook-signature")).split(separator: " ").map(String.init)
                #expect(signatures == [
                    independentWebhookSignature(secret: Self.newWebhookSecret, id: id, timestamp: timestamp, body: request.body),
                    independentWebhookSignature(secret: TestMerchant.webhookSecret, id: id, timestamp: timestamp, body: request.body),
                ])
            }

            // A reload that fails validation changes nothing and names the setting, not the value.
            try "not-a-webhook-secret\n".write(to: files.webhook, atomically: true, encoding: .utf8)
            let failure = try #require(e2e.server.reloadSecrets(trigger: "test").failureValue)
            #expect(failure.setting == "PAYSIDECAR_WEBHOOK_SECRET")
            #expect(!failure.description.contains("not-a-webhook-secret"))
            #expect(e2e.server.secrets.merchantSigning == MerchantSecret(Self.newSecret))
            let samples = try parsePrometheus(try await e2e.get("/metrics").bodyText)
            #expect((samples.value("paysidecar_secret_reloads_total", ["result": "rotated"]) ?? 0) >= 1)
            #expect((samples.value("paysidecar_secret_reloads_total", ["result": "error"]) ?? 0) >= 1)
            expectNoSecrets(in: e2e.logs.all, [Self.newSecret, Self.newToken, Self.newWebhookSecret, String(Self.newWebhookSecret.dropFirst(6))])
        }
    }

    @Test("a changed *_FILE is picked up without a signal")
    func fileWatch() async throws {
        let files = try SecretFiles()
        try files.write(merchant: TestMerchant.secret, webhook: TestMerchant.webhookSecret, token: TestMerchant.apiToken)
        try await withSidecar(settings: files.settings) { (e2e: E2E) async throws in
            try files.write(merchant: Self.newSecret, webhook: TestMerchant.webhookSecret, token: TestMerchant.apiToken)
            #expect(await eventually { e2e.server.secrets.merchantSigning == MerchantSecret(Self.newSecret) })
            #expect(e2e.server.secrets.merchantVerifying == [MerchantSecret(Self.newSecret), MerchantSecret(TestMerchant.secret)])
            // Logged just after the swap, by the watcher's task.
            #expect(await eventually { e2e.logs.all.contains("secrets rotated") })
            #expect(e2e.logs.all.contains("changed=merchant secret"))
        }
    }

    @Test("SIGHUP rotates the secrets of the running binary without dropping a request")
    func sighupUnderLoad() async throws {
        let files = try SecretFiles()
        let generations = [TestMerchant.secret, "generation-1-secret", "generation-2-secret", "generation-3-secret"]
        try files.write(merchant: generations[0], webhook: TestMerchant.webhookSecret, token: TestMerchant.apiToken)
        let receiver = try await TestHTTPServer.start { _ in TestHTTPResponse(status: 204) }
        // Empty values count as unset: the secrets come from the files only.
        let sidecar = try await SidecarProcess(webhookURL: "\(receiver.baseURL)/hooks", settings: files.settings)
        var configuration = CurlClient.Configuration()
        configuration.proxy = .none
        try await CurlClient.withClient(configuration: configuration) { client in
            try await sidecar.start(client)
            let shared = LoadState()
            try await withThrowingTaskGroup(of: Void.self) { group in
                for worker in 0..<4 {
                    group.addTask {
                        var n = 0
                        while !shared.stop.load(ordering: .acquiring) {
                            n += 1
                            let floor = shared.confirmed.load(ordering: .acquiring)
                            let response = try await client.execute(CurlRequest(method: "POST", url: sidecar.api + "/v1/deposits",
                                headers: [("Content-Type", "application/json"), ("Authorization", "Bearer \(TestMerchant.apiToken)")],
                                body: Array(#"{"mrn":"D-hup-\#(worker)-\#(n)","amount":"1.5","channelId":1,"returnUrl":"https://shop.example/","mode":"page"}"#.utf8)))
                            let fields = ((try? object(response))?["form"] as? [String: Any])?["fields"] as? [String: String] ?? [:]
                            shared.results.withLock { $0.append((response.status, floor, fields)) }
                        }
                    }
                }
                for generation in 1..<generations.count {
                    try await Task.sleep(for: .milliseconds(200))
                    try files.write(merchant: generations[generation], webhook: TestMerchant.webhookSecret, token: TestMerchant.apiToken)
                    sidecar.process!.signal(SIGHUP)
                    let seen = await eventually {
                        let log = (try? String(contentsOf: sidecar.logFile, encoding: .utf8)) ?? ""
                        return log.components(separatedBy: "secrets rotated").count - 1 >= generation
                    }
                    #expect(seen, "rotation \(generation) logged")
                    shared.confirmed.store(generation, ordering: .releasing)
                }
                try await Task.sleep(for: .milliseconds(200))
                shared.stop.store(true, ordering: .releasing)
                try await group.waitForAll()
            }
            #expect(sidecar.process?.isRunning == true, "the same process kept running")
            let all = shared.results.withLock { $0 }
            #expect(all.count >= 20)
            #expect(all.allSatisfy { $0.status == 201 }, "no request dropped or refused: \(Set(all.map(\.status)))")
            for result in all {
                let generation = generations.indices.first { pageFormSignature(result.fields, secret: generations[$0]) == result.fields["sign"] }
                #expect(generation != nil && generation! >= result.floor, "signed with generation \(generation ?? -1), confirmed \(result.floor)")
            }
            #expect(all.contains { pageFormSignature($0.fields, secret: generations[3]) == $0.fields["sign"] })
            #expect(await sidecar.signal(SIGTERM) == .exited(0))
        }
        try await receiver.stop()
        let log = try String(contentsOf: sidecar.logFile, encoding: .utf8)
        expectNoSecrets(in: log, generations + TestMerchant.allSecrets)
    }
}

/// What the load loop of the SIGHUP test shares between its tasks.
final class LoadState: Sendable {
    let confirmed = Atomic<Int>(0)
    let stop = Atomic<Bool>(false)
    /// Each answer: HTTP status, the generation confirmed before the request left, and the form's fields.
    let results = Mutex<[(status: Int, floor: Int, fields: [String: String])]>([])
}

extension Result {
    var failureValue: Failure? {
        if case .failure(let error) = self { return error }
        return nil
    }
}
