# The two commands: `make demo` runs the main job, `make test` runs the tests.
# Each first installs what a fresh Debian/Ubuntu machine with Swift lacks.
.PHONY: demo test test-postgres deps build sim tsan clean

SWIFT ?= swift
# The trace exporter (swift-otel) is a package trait: the tests, CI and the container image build with it; `make demo`
# leaves it out, so a newcomer's first build does not pay for it (README: Traces).
TEST_TRAITS ?= --traits OpenTelemetry

deps:
	@scripts/install-deps.sh

build: deps
	$(SWIFT) build

# The simulator and the sidecar wired to it, on loopback; prints the commands to try.
demo: deps
	$(SWIFT) build --product pay-sidecar
	$(SWIFT) run pay-sidecar demo

# The gateway simulator alone.
sim: deps
	$(SWIFT) run gateway-sim

test:
	@scripts/install-deps.sh --test
	$(SWIFT) test $(TEST_TRAITS)

# The tests with PostgreSQL too: a throwaway cluster on loopback, every test (the ledger's on both backends),
# then the end-to-end suite again with the sidecar on PostgreSQL. The cluster is stopped after, failure or not.
test-postgres:
	@scripts/install-deps.sh --test
	@pg=$$(scripts/pg-test-cluster.sh start) && eval "$$pg" && trap 'scripts/pg-test-cluster.sh stop' EXIT && \
	  $(SWIFT) test $(TEST_TRAITS) && PAYSIDECAR_TEST_BACKEND=postgres $(SWIFT) test $(TEST_TRAITS) --skip-build --filter SidecarTests

# CurlHTTP's tests under ThreadSanitizer, through a package of their own (Tests/TSan) that links nothing else.
tsan: deps
	$(SWIFT) test --package-path Tests/TSan --sanitize=thread

clean:
	rm -rf .build .build-tsan Tests/TSan/.build Benchmarks/.build
