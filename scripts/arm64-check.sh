#!/usr/bin/env bash
# End-to-end aarch64 check, from a fresh Debian/Ubuntu x86_64 machine (run as root):
#   1. build the abi3 manylinux2014 aarch64 wheel (maturin + zig, cross-compiled);
#   2. debootstrap a Debian arm64 root and run it under qemu-user-static;
#   3. install the wheel there next to Debian's own python3-numpy (no network, no other deps);
#   4. run the test suite (modules needing the extras skip themselves) and a learn-step bench.
#
#   bash scripts/arm64-check.sh            # work files in target/arm64-check (reused on re-run)
#   ARM64_FRESH=1 bash scripts/arm64-check.sh   # rebuild the root from scratch
#
# Each phase prints its wall time. If binfmt_misc cannot be registered (some containers),
# the arm64 binaries are run through qemu-aarch64-static explicitly inside the chroot and the
# root is unpacked without debootstrap's second stage.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
WORK=${ARM64_WORK:-$REPO/target/arm64-check}
ROOT=$WORK/root
SUITE=${ARM64_SUITE:-bookworm}
MIRROR=${ARM64_MIRROR:-http://deb.debian.org/debian}
TARGET=aarch64-unknown-linux-gnu
PACKAGES=python3,python3-numpy,python3-pytest,python3-hypothesis,python3-psutil,python3-pip
export PIP_DISABLE_PIP_VERSION_CHECK=1

phase_start=0
phase() { phase_start=$(date +%s); echo "== $*"; }
done_phase() { echo "   ($(($(date +%s) - phase_start)) s)"; }

mkdir -p "$WORK"

phase "host tools"
need=()
command -v debootstrap >/dev/null || need+=(debootstrap)
[ -x /usr/bin/qemu-aarch64-static ] || need+=(qemu-user-static)
command -v update-binfmts >/dev/null || need+=(binfmt-support)
if [ ${#need[@]} -gt 0 ]; then
    apt-get update -q
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${need[@]}"
fi
rustup target add "$TARGET"
python3 -m venv "$WORK/venv"
"$WORK/venv/bin/pip" install -q "maturin>=1.9.4,<2" ziglang
done_phase

phase "build the aarch64 wheel (release, fat LTO)"
rm -rf "$WORK/dist"
build_start=$(date +%s)
# maturin runs zig through `python -m ziglang`: the venv's python must come first on PATH.
PATH="$WORK/venv/bin:$PATH" maturin build --release --zig --compatibility manylinux2014 \
    --target "$TARGET" -o "$WORK/dist"
BUILD_S=$(($(date +%s) - build_start))
WHEEL=$(ls "$WORK"/dist/*.whl)
echo "   wheel: $(basename "$WHEEL")"
case "$(basename "$WHEEL")" in
    *-cp39-abi3-manylinux*aarch64.whl) ;;
    *) echo "unexpected wheel tag: $WHEEL" >&2; exit 1 ;;
esac
done_phase

# binfmt_misc: register qemu-aarch64 so the kernel runs arm64 ELF files (the F flag opens the
# interpreter now, so it works inside the chroot without a copy there).
if [ ! -e /proc/sys/fs/binfmt_misc/register ]; then
    mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc 2>/dev/null || true
fi
update-binfmts --enable qemu-aarch64 2>/dev/null || true
if grep -q '^enabled' /proc/sys/fs/binfmt_misc/qemu-aarch64 2>/dev/null; then
    BINFMT=1
    echo "== binfmt_misc: qemu-aarch64 registered"
else
    BINFMT=0
    echo "== binfmt_misc unavailable: running qemu-aarch64-static explicitly"
fi

if [ "${ARM64_FRESH:-0}" = 1 ] || [ ! -e "$ROOT/.lpn-root-ready" ]; then
    phase "debootstrap Debian $SUITE arm64"
    rm -rf "$ROOT"
    debootstrap --foreign --arch=arm64 --variant=minbase --include="$PACKAGES" \
        "$SUITE" "$ROOT" "$MIRROR"
    cp /usr/bin/qemu-aarch64-static "$ROOT/usr/bin/"
    if [ "$BINFMT" = 1 ]; then
        chroot "$ROOT" /debootstrap/debootstrap --second-stage
    else
        # No second stage without binfmt (dpkg's maintainer scripts exec arm64 binaries):
        # unpack every downloaded package instead; python needs no configuration step.
        for deb in "$ROOT"/var/cache/apt/archives/*.deb; do
            dpkg-deb -x "$deb" "$ROOT"
        done
    fi
    touch "$ROOT/.lpn-root-ready"
    done_phase
fi

if [ "$BINFMT" = 1 ]; then
    RUN=(chroot "$ROOT")
else
    RUN=(chroot "$ROOT" /usr/bin/qemu-aarch64-static)
fi

cleanup() {
    umount "$ROOT/proc" 2>/dev/null || true
    umount "$ROOT/dev" 2>/dev/null || true
}
trap cleanup EXIT
mountpoint -q "$ROOT/proc" || mount -t proc proc "$ROOT/proc"
mountpoint -q "$ROOT/dev" || mount --bind /dev "$ROOT/dev"

phase "install the wheel in the arm64 root (offline: numpy is Debian's)"
rm -rf "$ROOT/opt/lpn"
mkdir -p "$ROOT/opt/lpn"
cp "$WHEEL" "$ROOT/opt/lpn/"
# The tests, their pytest settings and the reference file some tests load by path; the
# package under test is the installed wheel (python/ is not on sys.path).
cp -r tests benches examples pyproject.toml "$ROOT/opt/lpn/"
mkdir -p "$ROOT/opt/lpn/python" && cp -r python/lpn "$ROOT/opt/lpn/python/"
"${RUN[@]}" /usr/bin/python3 -m pip uninstall -y -q --break-system-packages lpn-pheromone \
    >/dev/null 2>&1 || true
"${RUN[@]}" /usr/bin/python3 -m pip install -q --no-index --break-system-packages \
    "/opt/lpn/$(basename "$WHEEL")"
"${RUN[@]}" /usr/bin/python3 -c \
    "import platform, numpy, lpn; print('   import lpn', lpn.__version__, 'on', platform.machine(), 'numpy', numpy.__version__, 'from', lpn.__file__)"
done_phase

phase "test suite under emulation"
set +e
"${RUN[@]}" /bin/sh -c "cd /opt/lpn && /usr/bin/python3 -m pytest -q -p no:cacheprovider -rs tests" \
    | tee "$WORK/pytest.log"
TESTS_RC=${PIPESTATUS[0]}
set -e
done_phase

phase "learn-step bench under emulation"
"${RUN[@]}" /usr/bin/python3 /opt/lpn/benches/step.py --steps 1000 --grid-steps 50 \
    | tee "$WORK/bench.log"
done_phase

echo "== summary"
echo "wheel: $(basename "$WHEEL") built in ${BUILD_S} s"
echo "tests: $(tail -n 1 "$WORK/pytest.log")"
exit "$TESTS_RC"
