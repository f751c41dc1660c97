# syntax=docker/dockerfile:1
# pay-sidecar (and gateway-sim, for demos and tests).
#   docker build -t pay-sidecar .
#   docker run --rm -p 127.0.0.1:8080:8080 -p 8081:8081 -v pay-sidecar-data:/var/lib/pay-sidecar \
#     -e PAYSIDECAR_LISTEN=0.0.0.0:8080 -e PAYSIDECAR_API_TOKEN_FILE=/run/secrets/api-token \
#     -e PAYSIDECAR_GATEWAY_URL=... -e PAYSIDECAR_APP_KEY=... \
#     -e PAYSIDECAR_SECRET_KEY_FILE=/run/secrets/pay -e PAYSIDECAR_PUBLIC_URL=... pay-sidecar
# (beyond loopback the internal API needs PAYSIDECAR_API_TOKEN, or PAYSIDECAR_ALLOW_UNAUTHENTICATED_API=true)
# Ports: 8080 is the internal API (it can move money: keep it on the application's private network, never
# publish it); 8081 is the callback listener, the only port the gateway needs.
# Secrets: pass them as files (PAYSIDECAR_SECRET_KEY_FILE, PAYSIDECAR_WEBHOOK_SECRET_FILE,
# PAYSIDECAR_API_TOKEN_FILE); a changed file is picked up without a restart.
# The runtime stage is checked without Docker by scripts/check-runtime-image.sh (debootstrap + chroot).

FROM swift:6.3-bookworm AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends pkg-config libcurl4-openssl-dev libsqlite3-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# Dependencies first, so source changes reuse the resolved and built packages.
COPY Package.swift ./
RUN swift package resolve
COPY Sources ./Sources
COPY Tests ./Tests
# With the trace exporter (the OpenTelemetry trait; traces are exported only when OTEL_EXPORTER_OTLP_ENDPOINT is
# set). Both products with the same traits, so the second build reuses the first's modules.
RUN swift build -c release --static-swift-stdlib --traits OpenTelemetry --product pay-sidecar \
 && swift build -c release --static-swift-stdlib --traits OpenTelemetry --product gateway-sim \
 && install -D "$(swift build -c release --show-bin-path)/pay-sidecar" /out/pay-sidecar \
 && install -D "$(swift build -c release --show-bin-path)/gateway-sim" /out/gateway-sim \
 && strip /out/pay-sidecar /out/gateway-sim \
 && install -D /usr/libexec/swift/linux/swift-backtrace-static /out/swift-backtrace-static

FROM debian:bookworm-slim
# OCI labels; pass VERSION and REVISION at build time: docker build --build-arg VERSION=0.4.0 --build-arg REVISION=$(git rev-parse HEAD) .
ARG VERSION=0.4.0
ARG REVISION=unknown
LABEL org.opencontainers.image.title="pay-sidecar" \
      org.opencontainers.image.description="Signs and forwards payment calls to the gateway; turns its callbacks into signed webhooks (Standard Webhooks)." \
      org.opencontainers.image.version="$VERSION" \
      org.opencontainers.image.revision="$REVISION" \
      org.opencontainers.image.source="https://github.com/pay-sidecar/pay-sidecar" \
      org.opencontainers.image.documentation="https://github.com/pay-sidecar/pay-sidecar#readme" \
      org.opencontainers.image.base.name="debian:bookworm-slim"
# Only what the binary loads (the Swift runtime is linked in): libcurl, SQLite, CA certificates for https,
# time zones. scripts/check-runtime-image.sh found libsqlite3-0 missing from the first version of this list.
RUN apt-get update \
 && apt-get install -y --no-install-recommends libcurl4 libsqlite3-0 ca-certificates tzdata \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --no-create-home app \
 && mkdir -p /var/lib/pay-sidecar && chown app /var/lib/pay-sidecar
COPY --from=build /out/pay-sidecar /out/gateway-sim /out/swift-backtrace-static /usr/local/bin/
USER app
WORKDIR /var/lib/pay-sidecar
VOLUME /var/lib/pay-sidecar
# A crash prints every thread's backtrace (Swift's backtracer, run out of process) to the container's log.
ENV SWIFT_BACKTRACE=enable=yes,sanitize=yes,threads=all,images=all,interactive=no,swift-backtrace=/usr/local/bin/swift-backtrace-static \
    PAYSIDECAR_CALLBACK_LISTEN=0.0.0.0:8081 \
    PAYSIDECAR_DATABASE_URL=sqlite:///var/lib/pay-sidecar/pay-sidecar.db
EXPOSE 8080 8081
HEALTHCHECK --interval=10s --timeout=4s --start-period=5s --retries=3 CMD ["/usr/local/bin/pay-sidecar", "healthcheck"]
ENTRYPOINT ["/usr/local/bin/pay-sidecar"]
CMD ["serve"]
