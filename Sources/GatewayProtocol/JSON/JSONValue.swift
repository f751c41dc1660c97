/// A JSON document as the gateway and the sidecar's callers write it.
///
/// Numbers keep the exact characters they were written with: an amount is signed as the text the caller
/// wrote, so `100.50` must never turn into `100.5`. Objects keep their members in order.
public enum JSONValue: Sendable, Hashable {
    case null
    case bool(Bool)
    /// The number's literal text, exactly as written (validated JSON number grammar).
    case number(String)
    case string(String)
    case array([JSONValue])
    case object([JSONMember])

    /// One `"name": value` member of an object.
    public struct JSONMember: Sendable, Hashable {
        public var name: String
        public var value: JSONValue
        public init(_ name: String, _ value: JSONValue) {
            self.name = name
            self.value = value
        }
    }

    /// Builds an object from ordered members.
    public static func object(_ members: KeyValuePairs<String, JSONValue>) -> JSONValue {
        .object(members.map { JSONMember($0.key, $0.value) })
    }

    /// The members of an object, or nil.
    public var members: [JSONMember]? {
        if case .object(let members) = self { return members }
        return nil
    }

    /// The elements of an array, or nil.
    public var elements: [JSONValue]? {
        if case .array(let elements) = self { return elements }
        return nil
    }

    /// The first member whose name equals `name` exactly.
    public subscript(name: String) -> JSONValue? {
        members?.first { $0.name == name }?.value
    }

    /// The first member whose name equals `name` ignoring ASCII case: the gateway mixes `Mrn` and `mrn`.
    public func member(caseInsensitive name: String) -> JSONValue? {
        guard let members else { return nil }
        let wanted = name.asciiLowercased()
        return members.first { $0.name.asciiLowercased() == wanted }?.value
    }

    public var stringValue: String? {
        if case .string(let s) = self { return s }
        return nil
    }

    public var numberText: String? {
        if case .number(let n) = self { return n }
        return nil
    }

    public var boolValue: Bool? {
        if case .bool(let b) = self { return b }
        return nil
    }

    public var isNull: Bool {
        if case .null = self { return true }
        return false
    }

    /// A string, or a number's text: for fields that callers may send either way.
    public var scalarText: String? {
        switch self {
        case .string(let s): return s
        case .number(let n): return n
        default: return nil
        }
    }
}

extension String {
    /// Lowercases ASCII letters only; other characters are left as they are.
    @inlinable
    func asciiLowercased() -> String {
        var bytes = Array(self.utf8)
        var changed = false
        for i in bytes.indices where bytes[i] >= 0x41 && bytes[i] <= 0x5A {
            bytes[i] |= 0x20
            changed = true
        }
        return changed ? String(decoding: bytes, as: UTF8.self) : self
    }
}
