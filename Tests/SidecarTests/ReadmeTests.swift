import Foundation
import Sidecar
import TestSupport
import Testing

@Suite("README")
struct ReadmeTests {
    static let readme = repositoryRoot.appendingPathComponent("README.md")

    /// The configuration table's rows: `| variable[ / _FILE] | flag | default | meaning |`.
    static func configurationRows() throws -> [(variable: String, hasFile: Bool, flag: String, defaultValue: String)] {
        let text = try String(contentsOf: readme, encoding: .utf8)
        return text.split(separator: "\n").filter { $0.hasPrefix("| `PAYSIDECAR_") }.map { line in
            let cells = line.split(separator: "|", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
            let variableCell = cells[1]
            let variable = variableCell.split(separator: "`")[0]
            return (String(variable), variableCell.contains("/ `_FILE`"), cells[2].replacingOccurrences(of: "`", with: ""),
                    cells[3].replacingOccurrences(of: "`", with: ""))
        }
    }

    @Test("the configuration table lists every setting once, with its flag, *_FILE form and default, and nothing else")
    func configurationTable() async throws {
        let rows = try Self.configurationRows()
        #expect(rows.map(\.variable) == Setting.all.map(\.variable), "README rows in the order of Setting.all")
        for setting in Setting.all {
            guard let row = rows.first(where: { $0.variable == setting.variable }) else { continue }
            #expect(row.flag == setting.flag, "\(setting.variable): flag")
            #expect(row.hasFile == setting.isSecret, "\(setting.variable): a _FILE form exactly when secret")
            if let value = setting.defaultValue {
                #expect(row.defaultValue == value, "\(setting.variable): default")
            } else {
                #expect(row.defaultValue.hasPrefix("(required)") || row.defaultValue.hasPrefix("(unset"), "\(setting.variable): \(row.defaultValue)")
            }
        }
    }

    @Test("the README names the test command CI runs, and every operator command it documents exists")
    func commands() async throws {
        let text = try String(contentsOf: Self.readme, encoding: .utf8)
        #expect(text.contains("make test"))
        #expect(text.contains("make demo"))
        for command in ["sign", "verify-callback", "events list", "events show", "events redeliver", "secrets revoke-previous", "healthcheck", "migrate-ledger"] {
            #expect(text.contains("pay-sidecar \(command)"), "README documents pay-sidecar \(command)")
            let words = command.split(separator: " ").map(String.init)
            let run = try await runTool(words + ["--help"])
            #expect(run.status == 0, "pay-sidecar \(command) --help: \(run.stderr)")
        }
    }
}
