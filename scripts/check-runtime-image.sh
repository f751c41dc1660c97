#!/usr/bin/env bash
# Proves the Dockerfile's runtime stage without a Docker engine: builds the release binary as the builder
# stage does, makes a minimal Debian root filesystem with debootstrap holding only the packages the runtime
# stage installs, and runs the binary there as the image's non-root user: `--help`, then `serve` answering
# /healthz and /readyz with its database on the image's volume path. Prints the stripped binary's size and
# the root filesystem's size (the README quotes them).
#
#   scripts/check-runtime-image.sh            # needs root (debootstrap, chroot) and a Debian mirror
#   KEEP_ROOTFS=1 scripts/check-runtime-image.sh   # reuse the root filesystem from the last run
#
# Results: .build/runtime-check/result.txt
set -euo pipefail
cd "$(dirname "$0")/.."

suite=bookworm
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
work=.build/runtime-check
rootfs=$work/rootfs
# The runtime stage's packages, read from the Dockerfile so the two cannot drift apart.
packages=$(sed -n '/^FROM debian:/,$p' Dockerfile | grep -o 'install -y --no-install-recommends [a-z0-9 .+-]*' | head -1 \
  | sed 's/install -y --no-install-recommends //' | xargs)
[ -n "$packages" ] || { echo "check-runtime-image: cannot read the runtime packages from the Dockerfile" >&2; exit 2; }

if [ "$(id -u)" -ne 0 ]; then echo "check-runtime-image: needs root (debootstrap and chroot)" >&2; exit 2; fi
if ! command -v debootstrap >/dev/null; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap >/dev/null
fi
mkdir -p "$work"

echo "== release build (as the Dockerfile's builder stage)"
traits=$(grep -o -- '--traits [A-Za-z,]*' Dockerfile | head -1)
[ -n "$traits" ] || { echo "check-runtime-image: cannot read the build's traits from the Dockerfile" >&2; exit 2; }
# shellcheck disable=SC2086
swift build -c release --static-swift-stdlib $traits --product pay-sidecar 2>&1 | { grep -E "error|Compiling|Build complete" || true; } | tail -2
[ "${PIPESTATUS[0]}" -eq 0 ] || { echo "check-runtime-image: the release build failed" >&2; exit 1; }
binary=$(swift build -c release --show-bin-path)/pay-sidecar
cp "$binary" "$work/pay-sidecar"
strip "$work/pay-sidecar"

if [ -z "${KEEP_ROOTFS:-}" ] || [ ! -x "$rootfs/usr/bin/apt-get" ]; then
  echo "== debootstrap $suite (minbase) + $packages"
  rm -rf "$rootfs"
  debootstrap --variant=minbase --include="$(echo "$packages" | tr ' ' ',')" "$suite" "$rootfs" "$mirror" >"$work/debootstrap.log" 2>&1 \
    || { tail -20 "$work/debootstrap.log"; exit 1; }
  # As the Dockerfile: drop apt's lists and caches.
  rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin "$rootfs"/var/cache/apt/archives/*.deb
fi

# As the Dockerfile: the binary, Swift's crash backtracer (from this toolchain, as the builder stage copies it
# from the swift image), the non-root user, the volume folder.
install -m 0755 "$work/pay-sidecar" "$rootfs/usr/local/bin/pay-sidecar"
backtracer=$(dirname "$(readlink -f "$(command -v swift)")")/../libexec/swift/linux/swift-backtrace-static
install -m 0755 "$backtracer" "$rootfs/usr/local/bin/swift-backtrace-static"
# The image's SWIFT_BACKTRACE setting, read from the Dockerfile.
backtrace_setting=$(grep -o 'SWIFT_BACKTRACE=[^ \\]*' Dockerfile | head -1)
[ -n "$backtrace_setting" ] || { echo "check-runtime-image: cannot read SWIFT_BACKTRACE from the Dockerfile" >&2; exit 2; }
chroot "$rootfs" sh -c 'id app >/dev/null 2>&1 || useradd --system --uid 10001 --no-create-home app 2>/dev/null'
mkdir -p "$rootfs/var/lib/pay-sidecar" "$rootfs/run/secrets"
chroot "$rootfs" chown app /var/lib/pay-sidecar
echo "check-runtime-secret" > "$rootfs/run/secrets/pay_secret"
chmod 0444 "$rootfs/run/secrets/pay_secret"

# A container runtime mounts /proc (Swift reads the process's arguments from /proc/self/cmdline on Linux).
mountpoint -q "$rootfs/proc" || mount -t proc proc "$rootfs/proc"
unmount_proc() { umount "$rootfs/proc" 2>/dev/null || true; }
trap unmount_proc EXIT

missing=$(chroot "$rootfs" ldd /usr/local/bin/pay-sidecar | grep "not found" || true)
if [ -n "$missing" ]; then
  echo "check-runtime-image: FAILED: the runtime stage lacks libraries the binary needs:" >&2
  echo "$missing" >&2
  exit 1
fi

echo "== pay-sidecar --help in the runtime root filesystem"
chroot --userspec=10001:10001 "$rootfs" /usr/local/bin/pay-sidecar --help | head -3

echo "== pay-sidecar serve in the runtime root filesystem"
port=${CHECK_PORT:-28180}
log=$work/serve.log
chroot --userspec=10001:10001 "$rootfs" /usr/bin/env -i HOME=/var/lib/pay-sidecar \
  PAYSIDECAR_GATEWAY_URL=https://pay.example.com PAYSIDECAR_APP_KEY=check PAYSIDECAR_SECRET_KEY_FILE=/run/secrets/pay_secret \
  PAYSIDECAR_PUBLIC_URL=https://cb.example.com PAYSIDECAR_LISTEN=127.0.0.1:$port PAYSIDECAR_CALLBACK_LISTEN=127.0.0.1:$((port + 1)) \
  PAYSIDECAR_DATABASE_URL=sqlite:///var/lib/pay-sidecar/pay-sidecar.db \
  /usr/local/bin/pay-sidecar serve >"$log" 2>&1 &
pid=$!
cleanup() { kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; unmount_proc; }
trap cleanup EXIT
ok=""
for _ in $(seq 1 100); do
  if curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && curl -fsS "http://127.0.0.1:$port/readyz" >/dev/null 2>&1; then ok=1; break; fi
  kill -0 "$pid" 2>/dev/null || break
  sleep 0.1
done
if [ -z "$ok" ]; then
  echo "check-runtime-image: FAILED: serve did not answer /healthz and /readyz" >&2
  cat "$log" >&2
  exit 1
fi
# The image's HEALTHCHECK command, as Docker would run it inside the container.
chroot --userspec=10001:10001 "$rootfs" /usr/bin/env -i PAYSIDECAR_LISTEN=127.0.0.1:$port /usr/local/bin/pay-sidecar healthcheck --ready \
  || { echo "check-runtime-image: FAILED: pay-sidecar healthcheck" >&2; exit 1; }
echo "healthcheck: ok"
curl -fsS "http://127.0.0.1:$port/healthz"; echo
curl -fsS "http://127.0.0.1:$((port + 1))/healthz"; echo
[ -s "$rootfs/var/lib/pay-sidecar/pay-sidecar.db" ] || { echo "check-runtime-image: FAILED: no database on the volume path" >&2; exit 1; }
if grep -q "check-runtime-secret" "$log"; then echo "check-runtime-image: FAILED: the secret appears in the log" >&2; exit 1; fi
kill -TERM "$pid"
wait "$pid" && status=0 || status=$?
trap unmount_proc EXIT
[ "$status" -eq 0 ] || { echo "check-runtime-image: FAILED: serve exited $status on SIGTERM" >&2; cat "$log" >&2; exit 1; }

echo "== a crash in the runtime root filesystem prints every thread's backtrace ($backtrace_setting)"
crashlog=$work/crash.log
chroot --userspec=10001:10001 "$rootfs" /usr/bin/env -i HOME=/var/lib/pay-sidecar "$backtrace_setting" \
  PAYSIDECAR_GATEWAY_URL=https://pay.example.com PAYSIDECAR_APP_KEY=check PAYSIDECAR_SECRET_KEY_FILE=/run/secrets/pay_secret \
  PAYSIDECAR_PUBLIC_URL=https://cb.example.com PAYSIDECAR_LISTEN=127.0.0.1:$port PAYSIDECAR_CALLBACK_LISTEN=127.0.0.1:$((port + 1)) \
  PAYSIDECAR_DATABASE_URL=sqlite:///var/lib/pay-sidecar/pay-sidecar.db \
  /usr/local/bin/pay-sidecar serve >"$crashlog" 2>&1 &
pid=$!
trap cleanup EXIT
for _ in $(seq 1 100); do curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break; sleep 0.1; done
kill -SEGV "$pid"
# The backtracer reports, then the process ends; should it linger, it is killed after 20 s.
for _ in $(seq 1 200); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
kill -KILL "$pid" 2>/dev/null || true
wait "$pid" 2>/dev/null || true
trap unmount_proc EXIT
if ! grep -q "Program crashed" "$crashlog" || ! grep -q 'Thread 0 .*crashed' "$crashlog"; then
  echo "check-runtime-image: FAILED: no backtrace after a crash" >&2; tail -20 "$crashlog" >&2; exit 1
fi
grep -m1 "Program crashed" "$crashlog"

binary_size=$(stat -c %s "$work/pay-sidecar")
unmount_proc
rootfs_kb=$(du -sk "$rootfs" | cut -f1)
cat > "$work/result.txt" <<EOF
runtime check passed $(date -u +%Y-%m-%dT%H:%MZ)
runtime packages: $packages (debootstrap --variant=minbase $suite)
pay-sidecar binary (release, --static-swift-stdlib, stripped): $((binary_size / 1024 / 1024)) MiB ($binary_size bytes)
root filesystem with the binary: $((rootfs_kb / 1024)) MiB
EOF
echo "== result"
cat "$work/result.txt"
