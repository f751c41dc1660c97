import Foundation

/// The repository's root folder (this file is Tests/TestSupport/Repository.swift), for tests that read its files
/// or run what it built.
public let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent()
