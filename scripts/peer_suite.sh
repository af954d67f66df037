#!/usr/bin/env bash
# Run uiautomator2's own device tests (its mobile_tests/, written for a real phone with the
# ApiDemos app) against the virtual device, and report each test's pass or fail.
#
#   scripts/peer_suite.sh [UIAUTOMATOR2_CHECKOUT]
#
# Without an argument the uiautomator2 repository is cloned (shallow) into a temporary folder
# outside this repository; its mobile_tests/ run there, unmodified, with the uiautomator2 client
# of this repository's venv. The phone is `phoneflow emulator start` over
# scripts/peer_suite_apidemos.json: an app model of the ApiDemos screens those tests visit
# (package io.appium.android.apis). Needs Debian's adb (`make system-deps`) and the venv
# (`make .venv/.installed`). Exit status: pytest's.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
PY="$ROOT/.venv/bin/python"
PORT=${PEER_SUITE_PORT:-5592}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/peer-suite.XXXXXX")
EMULATOR_PID=""

cleanup() {
    if [ -n "$EMULATOR_PID" ]; then
        kill "$EMULATOR_PID" 2>/dev/null || true
        wait "$EMULATOR_PID" 2>/dev/null || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT

ADB=$(command -v adb || true)
if [ -z "$ADB" ]; then
    echo "adb is not installed: run make system-deps" >&2
    exit 2
fi
export ADBUTILS_ADB_PATH="$ADB"

SRC=${1:-}
if [ -z "$SRC" ]; then
    echo "fetching uiautomator2's mobile_tests (git clone --depth 1) into $WORK" >&2
    git clone --quiet --depth 1 https://github.com/openatx/uiautomator2 "$WORK/uiautomator2"
    SRC="$WORK/uiautomator2"
fi
if [ ! -d "$SRC/mobile_tests" ]; then
    echo "$SRC has no mobile_tests/ folder: give a checkout of github.com/openatx/uiautomator2" >&2
    exit 2
fi
cp -r "$SRC/mobile_tests" "$WORK/mobile_tests"

"$ADB" start-server >/dev/null
"$ROOT/.venv/bin/phoneflow" emulator start --apps "$ROOT/scripts/peer_suite_apidemos.json" --port "$PORT" \
    >"$WORK/emulator.log" 2>&1 &
EMULATOR_PID=$!
export ANDROID_SERIAL="emulator-$PORT"
if ! timeout 30 "$ADB" -s "$ANDROID_SERIAL" wait-for-device; then
    echo "the virtual device did not come up; its log:" >&2
    cat "$WORK/emulator.log" >&2
    exit 2
fi

cd "$WORK/mobile_tests"
status=0
"$PY" -m pytest -q -rA -p no:cacheprovider --rootdir "$WORK/mobile_tests" . || status=$?
exit "$status"
