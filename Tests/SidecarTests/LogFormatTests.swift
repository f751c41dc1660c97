import Foundation
import HTTPTypes
import Hummingbird
import Orders
import Testing

@testable import Sidecar

@Suite("Log line fields")
struct LogFormatTests {
    @Test("timestamps: the date and time Foundation's ISO 8601 style gives, exact milliseconds, leap days and year ends")
    func timestamps() {
        let fixed: [Int64] = [
            0, 999, 1000, 951_782_400_000, 951_868_799_999, 4_107_542_399_999, 1_798_761_599_999, 1_798_761_600_000,
            -1, -86_400_000, -2_208_988_800_000, 253_402_300_799_999,
        ]
        var generator = SystemRandomNumberGenerator()
        let random = (0..<2000).map { _ in Int64.random(in: -2_208_988_800_000...7_258_118_400_000, using: &generator) }
        // Foundation gives the date and time of whole seconds exactly; its milliseconds come through a Double
        // (0.999 s prints as .998), so those are checked by arithmetic.
        let style = Date.ISO8601FormatStyle()
        for millis in fixed + random {
            let (seconds, fraction) = millis.quotientAndRemainder(dividingBy: 1000)
            let (whole, ms) = fraction < 0 ? (seconds - 1, fraction + 1000) : (seconds, fraction)
            let foundation = Date(timeIntervalSince1970: Double(whole)).formatted(style)  // 2026-11-29T03:28:47Z
            let expected = foundation.dropLast() + "." + String(String(ms + 1000).dropFirst()) + "Z"
            #expect(rfc3339(millis) == expected, "\(millis)")
        }
    }

    @Test("a request id is the caller's when printable and short, else 16 new hex digits")
    func requestIDs() {
        func request(_ id: String?) -> Request {
            var head = HTTPRequest(method: .post, scheme: "http", authority: "127.0.0.1", path: "/v1/payouts")
            if let id { head.headerFields[.requestID] = id }
            return Request(head: head, body: .init(buffer: ByteBuffer()))
        }
        #expect(RequestLogMiddleware.requestID(from: request("req-42")) == "req-42")
        var seen = Set<String>()
        for given in [nil, "", String(repeating: "x", count: 129), "has space"] {
            for _ in 0..<250 {
                let id = RequestLogMiddleware.requestID(from: request(given))
                #expect(id.count == 16 && id.utf8.allSatisfy { (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) || (UInt8(ascii: "a")...UInt8(ascii: "f")).contains($0) }, "\(id)")
                seen.insert(id)
            }
        }
        #expect(seen.count == 1000, "every generated id is new")
    }
}
