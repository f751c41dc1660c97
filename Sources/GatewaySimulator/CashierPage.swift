import GatewayProtocol

/// The small HTML pages the simulator shows a browser: the cashier with Pay and Fail, and the result.
enum CashierPage {
    static func escape(_ s: String) -> String { HTMLText.escape(s) }

    static func layout(title: String, body: String) -> String {
        """
        <!doctype html>
        <html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
        <title>\(escape(title))</title>
        <style>
        body{font-family:system-ui,sans-serif;max-width:28rem;margin:3rem auto;padding:0 1rem;color:#222}
        .card{border:1px solid #ddd;border-radius:.75rem;padding:1.5rem;box-shadow:0 1px 4px #0001}
        dt{color:#666;font-size:.85rem}dd{margin:0 0 .75rem 0;font-size:1.1rem}
        .amount{font-size:2rem;font-weight:600}
        button{font-size:1rem;padding:.6rem 1.4rem;border-radius:.5rem;border:0;cursor:pointer;margin-right:.5rem}
        .pay{background:#1a7f37;color:#fff}.fail{background:#cf222e;color:#fff}
        .note{color:#666;font-size:.8rem;margin-top:1.5rem}
        </style></head>
        <body><div class="card">\(body)</div>
        <p class="note">gateway-sim: a stand-in for the payment gateway. No real money moves.</p></body></html>
        """
    }

    static func cashier(_ order: SimOrder) -> String {
        let channel = order.channelId.flatMap(Channel.withID)
        var body = """
            <h1>Cashier</h1>
            <dl>
            <dt>Amount</dt><dd class="amount">¥\(escape(order.amountText))</dd>
            <dt>Order (mrn)</dt><dd>\(escape(order.mrn))</dd>
            <dt>Channel</dt><dd>\(escape(channel.map { "\($0.name) (\($0.label))" } ?? "-"))</dd>
            """
        if let payer = order.payer { body += "<dt>Payer</dt><dd>\(escape(payer))</dd>" }
        body += "<dt>Status</dt><dd>\(escape(order.statusText))</dd></dl>"
        if order.status == .waiting {
            let base = "/_sim/cashier/\(escape(FormURLEncoding.percentEncode(order.id)))"
            body += """
                <form method="post" action="\(base)/pay" style="display:inline"><button class="pay" type="submit">Pay</button></form>
                <form method="post" action="\(base)/fail" style="display:inline"><button class="fail" type="submit">Fail</button></form>
                """
        } else if let returnUrl = order.returnUrl {
            body += "<p><a href=\"\(escape(returnUrl))\">Return to the merchant</a></p>"
        }
        return layout(title: "Cashier: \(order.mrn)", body: body)
    }

    static func result(_ order: SimOrder) -> String {
        let verb = order.status == .paid ? "Payment received" : "Payment failed"
        var body = "<h1>\(verb)</h1><p>Order <b>\(escape(order.mrn))</b>, ¥\(escape(order.amountText)).</p>"
        if order.status == .paid { body += "<p>The merchant has been notified by callback.</p>" }
        if let returnUrl = order.returnUrl {
            body += "<p><a href=\"\(escape(returnUrl))\">Return to the merchant</a></p>"
        }
        return layout(title: verb, body: body)
    }

    static func error(code: String, message: String) -> String {
        layout(title: "Payment error", body: "<h1>Payment error</h1><p><code>\(escape(code))</code></p><p>\(escape(message))</p>")
    }
}
