/// The OpenAPI 3.1 document of the internal API: `Sources/Sidecar/openapi.json`, embedded at build time.
enum OpenAPIDocument {
    static let bytes: [UInt8] = PackageResources.openapi_json
}
