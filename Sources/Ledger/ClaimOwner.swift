import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// The name a ledger instance claims outbox events under: `host/pid/random`. Host and pid tell an operator whose
/// claim a row holds (`claimed_by`); the random part keeps it unique when a restarted container comes back with
/// the same host name and pid 1, so a new process never takes its dead predecessor's claims for its own.
public func newClaimOwner() -> String {
    let host = ProcessInfo.processInfo.hostName.prefix(64)
    let random = (0..<4).map { _ in String(format: "%02x", UInt8.random(in: 0...255)) }.joined()
    return "\(host)/\(getpid())/\(random)"
}
