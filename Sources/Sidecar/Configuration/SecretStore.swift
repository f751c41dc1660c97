import GatewayProtocol
import Synchronization
import Webhooks

/// The secrets the sidecar holds: the merchant secret, the webhook secret and the API token.
public struct SecretSet: Sendable, Hashable {
    public var merchant: MerchantSecret
    public var webhook: WebhookSecret?
    public var apiToken: Secret?

    public init(merchant: MerchantSecret, webhook: WebhookSecret?, apiToken: Secret?) {
        self.merchant = merchant
        self.webhook = webhook
        self.apiToken = apiToken
    }
}

/// What a reload changed.
public struct SecretChange: Sendable, Hashable, CustomStringConvertible {
    public var merchant: Bool
    public var webhook: Bool
    public var apiToken: Bool

    public init(merchant: Bool = false, webhook: Bool = false, apiToken: Bool = false) {
        self.merchant = merchant
        self.webhook = webhook
        self.apiToken = apiToken
    }

    public var isEmpty: Bool { !merchant && !webhook && !apiToken }

    /// Machine-readable names of what changed: `merchant_secret`, `webhook_secret`, `api_token`.
    public var identifiers: [String] {
        [(merchant, "merchant_secret"), (webhook, "webhook_secret"), (apiToken, "api_token")].filter(\.0).map(\.1)
    }

    /// The names of what changed, never the values: "merchant secret, webhook secret".
    public var description: String {
        let names = [(merchant, "merchant secret"), (webhook, "webhook secret"), (apiToken, "API token")].filter(\.0).map(\.1)
        return names.isEmpty ? "nothing" : names.joined(separator: ", ")
    }
}

/// The secrets in use, replaceable while the sidecar runs (SIGHUP, or a changed `*_FILE`).
///
/// A replaced secret stays valid for `grace` (PAYSIDECAR_SECRET_GRACE_PERIOD) where that makes sense:
/// callbacks signed with the previous merchant secret are still accepted (the gateway may sign with it until
/// its own switch); webhooks carry two signatures, new and previous, so receivers can switch at their pace;
/// the previous API token still opens the internal API. New gateway calls are signed with the new secret at once.
public final class SecretStore: Sendable {
    private struct Previous<Value: Sendable>: Sendable {
        var value: Value
        var until: ContinuousClock.Instant

        /// The value while its grace period lasts, else nothing.
        static func valid(_ previous: Previous?, at instant: ContinuousClock.Instant) -> [Value] {
            guard let previous, previous.until > instant else { return [] }
            return [previous.value]
        }
    }

    private struct State: Sendable {
        var current: SecretSet
        var merchant: Previous<MerchantSecret>?
        var webhook: Previous<WebhookSecret>?
        var apiToken: Previous<Secret>?
    }

    public let grace: Duration
    private let state: Mutex<State>
    private let now: @Sendable () -> ContinuousClock.Instant

    public init(_ secrets: SecretSet, grace: Duration, now: @escaping @Sendable () -> ContinuousClock.Instant = { ContinuousClock.now }) {
        self.grace = grace
        self.now = now
        self.state = Mutex(State(current: secrets))
    }

    /// The secrets new requests are signed with.
    public var current: SecretSet { state.withLock { $0.current } }

    /// Signs gateway calls and page forms.
    public var merchantSigning: MerchantSecret { state.withLock { $0.current.merchant } }

    /// Accepted on callbacks: the current merchant secret, and the previous one during the grace period.
    public var merchantVerifying: [MerchantSecret] {
        let at = now()
        return state.withLock { state in
            [state.current.merchant] + Previous.valid(state.merchant, at: at)
        }
    }

    /// Signs webhooks: with the current secret, and the previous one too during the grace period. Nil when
    /// no webhook secret is configured.
    public var webhookSigner: WebhookSigner? {
        let at = now()
        return state.withLock { state in
            guard let current = state.current.webhook else { return nil }
            return WebhookSigner(secrets: [current] + Previous.valid(state.webhook, at: at))
        }
    }

    /// Accepted as bearer tokens: the current token, and the previous one during the grace period.
    public var apiTokens: [Secret] {
        let at = now()
        return state.withLock { state in
            guard let current = state.current.apiToken else { return [] }
            return [current] + Previous.valid(state.apiToken, at: at)
        }
    }

    /// Ends the grace period of every previous secret now (a leaked one stops working at once). Returns which
    /// were still valid.
    @discardableResult
    public func revokePrevious() -> SecretChange {
        let at = now()
        return state.withLock { state in
            let change = SecretChange(merchant: !Previous.valid(state.merchant, at: at).isEmpty, webhook: !Previous.valid(state.webhook, at: at).isEmpty,
                                      apiToken: !Previous.valid(state.apiToken, at: at).isEmpty)
            state.merchant = nil
            state.webhook = nil
            state.apiToken = nil
            return change
        }
    }

    /// Puts `secrets` in use. What changed keeps its previous value for the grace period (a second change
    /// within it ends the first one's grace: only one previous value is kept).
    @discardableResult
    public func replace(with secrets: SecretSet) -> SecretChange {
        let until = now() + grace
        return state.withLock { state in
            var change = SecretChange()
            if secrets.merchant != state.current.merchant {
                change.merchant = true
                state.merchant = Previous(value: state.current.merchant, until: until)
            }
            if secrets.webhook != state.current.webhook {
                change.webhook = true
                state.webhook = state.current.webhook.map { Previous(value: $0, until: until) }
            }
            if secrets.apiToken != state.current.apiToken {
                change.apiToken = true
                state.apiToken = state.current.apiToken.map { Previous(value: $0, until: until) }
            }
            state.current = secrets
            return change
        }
    }
}
