# syntax=docker/dockerfile:1
# pay-sidecar (and gateway-sim, for demos and tests).
# Build:  docker build -t pay-sidecar .
# Run:    docker run --rm -p 8080:8080 -p 8081:8081 -e PAYSIDECAR_LISTEN=0.0.0.0:8080 \
#           -e PAYSIDECAR_GATEWAY_URL=... -e PAYSIDECAR_APP_KEY=... -e PAYSIDECAR_SECRET_KEY_FILE=/run/secrets/pay \
#           -e PAYSIDECAR_PUBLIC_URL=... pay-sidecar
# The internal port (8080) belongs on the application's private network only; 8081 faces the gateway.

FROM swift:6.2-bookworm AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends pkg-config libcurl4-openssl-dev libsqlite3-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY Package.swift ./
COPY Sources ./Sources
COPY Tests ./Tests
RUN swift build -c release --static-swift-stdlib --product pay-sidecar \
 && swift build -c release --static-swift-stdlib --product gateway-sim \
 && install -D "$(swift build -c release --show-bin-path)/pay-sidecar" /out/pay-sidecar \
 && install -D "$(swift build -c release --show-bin-path)/gateway-sim" /out/gateway-sim \
 && strip /out/pay-sidecar /out/gateway-sim

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends libcurl4 ca-certificates tzdata \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --no-create-home app \
 && mkdir -p /var/lib/pay-sidecar && chown app /var/lib/pay-sidecar
COPY --from=build /out/pay-sidecar /out/gateway-sim /usr/local/bin/
USER app
WORKDIR /var/lib/pay-sidecar
VOLUME /var/lib/pay-sidecar
ENV PAYSIDECAR_CALLBACK_LISTEN=0.0.0.0:8081
EXPOSE 8080 8081
ENTRYPOINT ["/usr/local/bin/pay-sidecar"]
CMD ["serve"]
