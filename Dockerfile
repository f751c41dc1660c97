# syntax=docker/dockerfile:1
# First version: builds the gateway simulator; the sidecar image replaces its entrypoint when it lands.
# Build:  docker build -t gateway-sim .
# Run:    docker run --rm -p 9090:9090 -e GATEWAY_SIM_LISTEN=0.0.0.0:9090 gateway-sim

FROM swift:6.2-bookworm AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends pkg-config libcurl4-openssl-dev libsqlite3-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY Package.swift ./
COPY Sources ./Sources
COPY Tests ./Tests
RUN swift build -c release --static-swift-stdlib --product gateway-sim \
 && install -D "$(swift build -c release --show-bin-path)/gateway-sim" /out/gateway-sim \
 && strip /out/gateway-sim

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends libcurl4 ca-certificates tzdata \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --no-create-home app
COPY --from=build /out/gateway-sim /usr/local/bin/gateway-sim
USER app
ENV GATEWAY_SIM_LISTEN=0.0.0.0:9090
EXPOSE 9090
ENTRYPOINT ["/usr/local/bin/gateway-sim"]
