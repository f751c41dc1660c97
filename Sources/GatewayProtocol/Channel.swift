/// A deposit payment channel from the gateway's channel table.
public struct Channel: Sendable, Hashable, Identifiable {
    public let id: Int
    /// The name in the gateway's document (Chinese).
    public let name: String
    /// An English label.
    public let label: String

    /// The whole table, in id order.
    public static let all: [Channel] = [
        Channel(id: 1, name: "微信", label: "WeChat"),
        Channel(id: 2, name: "支付宝", label: "Alipay"),
        Channel(id: 3, name: "银行卡", label: "Bank card"),
        Channel(id: 4, name: "支付宝红包", label: "Alipay red packet"),
        Channel(id: 5, name: "云闪付", label: "UnionPay QuickPass"),
        Channel(id: 6, name: "支付宝转银行卡", label: "Alipay transfer to bank card"),
        Channel(id: 7, name: "支付宝wap", label: "Alipay WAP"),
        Channel(id: 8, name: "微信wap", label: "WeChat WAP"),
        Channel(id: 9, name: "支付宝跳转", label: "Alipay redirect"),
        Channel(id: 10, name: "微信跳转", label: "WeChat redirect"),
        Channel(id: 11, name: "微信手机转账", label: "WeChat mobile transfer"),
        Channel(id: 12, name: "支付宝转卡飞行模式", label: "Alipay to card, flight mode"),
        Channel(id: 13, name: "微信赞赏码", label: "WeChat appreciation code"),
        Channel(id: 14, name: "支付宝固码", label: "Alipay fixed QR code"),
        Channel(id: 15, name: "支付宝群红包", label: "Alipay group red packet"),
    ]

    /// The channel with this id, or nil if the table has none.
    public static func withID(_ id: Int) -> Channel? {
        guard id >= 1, id <= all.count else { return nil }
        return all[id - 1]
    }
}
