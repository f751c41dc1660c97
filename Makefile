# The two commands: `make demo` runs the main job, `make test` runs the tests.
# Each first installs what a fresh Debian/Ubuntu machine with Swift lacks.
.PHONY: demo test deps build sim tsan clean

SWIFT ?= swift

deps:
	@scripts/install-deps.sh

build: deps
	$(SWIFT) build

# For now the demo is the gateway simulator; `pay-sidecar demo` replaces it when the sidecar lands.
demo: deps
	$(SWIFT) build --product gateway-sim
	@echo "gateway-sim: try the commands in README.md (section 'Try the simulator') in another terminal"
	$(SWIFT) run gateway-sim --auto-settle 30s

sim: demo

test: deps
	$(SWIFT) test

# CurlHTTP's tests under ThreadSanitizer, in a build folder of their own.
tsan: deps
	$(SWIFT) test --sanitize=thread --scratch-path .build-tsan --filter CurlHTTPTests

clean:
	rm -rf .build .build-tsan
