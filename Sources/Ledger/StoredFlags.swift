import GatewayProtocol
import Orders

/// An order's flags as every backend stores them: one JSON array of `{"code","detail","at"}` in a text column,
/// so a journal reads the same whichever database holds it.
public enum StoredFlags {
    public static func encode(_ flags: [OrderFlag]) -> String {
        JSONValue.array(flags.map { flag in
            .object(["code": .string(flag.code.rawValue), "detail": .string(flag.detail), "at": .number(String(flag.at))])
        }).jsonText
    }

    /// Flags as stored; one whose code this version does not know is kept as a contradiction, its detail intact.
    public static func decode(_ text: String) -> [OrderFlag] {
        guard let items = (try? JSONValue.parse(text))?.elements else { return [] }
        return items.map { item in
            OrderFlag(code: item["code"]?.stringValue.flatMap(FlagCode.init(rawValue:)) ?? .contradictingOutcome,
                      detail: item["detail"]?.stringValue ?? "", at: item["at"]?.scalarText.flatMap { Int64($0) } ?? 0)
        }
    }
}
