import GatewayProtocol

/// Page mode: the signed form a browser posts to the gateway's `/api/Pay`, and a page that posts it.
enum PageForm {
    static func answer(_ deposit: DepositRequest, action: String, secret: MerchantSecret) -> JSONValue {
        let fields = deposit.formFields(secret: secret)
        return .object([
            "mrn": .string(deposit.mrn),
            "status": .string("pending"),
            "form": .object([
                "action": .string(action),
                "method": .string("POST"),
                "fields": .object(fields.map { JSONValue.JSONMember($0.name, .string($0.value)) }),
            ]),
            "html": .string(html(fields, action: action)),
        ])
    }

    /// A UTF-8 page whose form submits itself; every value is HTML-escaped.
    static func html(_ fields: [(name: String, value: String)], action: String) -> String {
        var page = """
            <!doctype html>
            <html><head><meta charset="utf-8"><title>Redirecting to payment</title></head>
            <body onload="document.forms[0].submit()">
            <form method="post" action="\(escape(action))" accept-charset="utf-8">

            """
        for (name, value) in fields {
            page += "<input type=\"hidden\" name=\"\(escape(name))\" value=\"\(escape(value))\">\n"
        }
        page += "<noscript><button type=\"submit\">Continue to payment</button></noscript>\n</form>\n</body></html>\n"
        return page
    }

    static func escape(_ s: String) -> String { HTMLText.escape(s) }
}
