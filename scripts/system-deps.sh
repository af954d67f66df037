#!/usr/bin/env bash
# Installs the system packages phoneflow needs when they are missing: Debian's adb and
# chromium, a PostgreSQL server when none answers, node/npm (to build the builder, 20.19 or
# newer) with the Appium server and its UiAutomator2 driver (tests/appium, from its
# package-lock.json). `system-deps.sh adb`
# asks for adb only (what `make demo` needs); no argument means everything the suite needs.
set -uo pipefail

wanted=("$@")
[ ${#wanted[@]} -gt 0 ] || wanted=(adb chromium node postgresql appium)
wants() { [[ " ${wanted[*]} " == *" $1 "* ]]; }

need=()
wants adb && { command -v adb >/dev/null 2>&1 || need+=(adb); }
wants chromium && { command -v chromium >/dev/null 2>&1 || need+=(chromium); }
wants appium && { command -v npm >/dev/null 2>&1 || need+=(nodejs npm); }
wants node && { command -v node >/dev/null 2>&1 || need+=(nodejs); }
wants node && { command -v npm >/dev/null 2>&1 || need+=(npm); }

pg_url="${PHONEFLOW_TEST_DATABASE_URL:-postgresql://postgres@127.0.0.1:5432/test}"
pg_up() { command -v pg_isready >/dev/null 2>&1 && pg_isready -q -h 127.0.0.1 -p 5432; }
if wants postgresql && ! pg_up && ! command -v pg_ctlcluster >/dev/null 2>&1; then
  need+=(postgresql)
fi

if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "phoneflow tests want these system packages: ${need[*]}; run as root or install them (apt-get install ${need[*]})." >&2
    exit 0
  fi
  echo "installing system packages: ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null && apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null \
    || echo "apt-get could not install ${need[*]}: the tests that need them will say so." >&2
fi

if wants postgresql && ! pg_up && [ "$(id -u)" -eq 0 ] && command -v pg_ctlcluster >/dev/null 2>&1; then
  version=$(ls /etc/postgresql 2>/dev/null | sort -V | tail -1)
  if [ -n "$version" ]; then
    pg_ctlcluster --skip-systemctl-redirect "$version" main start >/dev/null 2>&1 || true
    for _ in $(seq 1 20); do pg_up && break; sleep 0.5; done
    # trust auth on loopback and a `test` database, as the suite expects
    if pg_up; then
      su postgres -c "psql -h 127.0.0.1 -tAc \"SELECT 1 FROM pg_database WHERE datname='test'\"" 2>/dev/null | grep -q 1 \
        || su postgres -c "createdb test" >/dev/null 2>&1 || true
    fi
  fi
fi
# Appium 3.8.0 + appium-uiautomator2-driver 8.7.0 into tests/appium/node_modules (APPIUM_HOME), once per
# lock file: the stamp holds the lock's checksum, so an unchanged lock costs nothing; npm's own cache
# (~/.npm) makes a reinstall on a fresh clone quick.
if wants appium && command -v npm >/dev/null 2>&1; then
  appium_dir="$(cd "$(dirname "$0")/.." && pwd)/tests/appium"
  stamp="$appium_dir/node_modules/.phoneflow-lock.sha256"
  lock_sum=$(sha256sum "$appium_dir/package-lock.json" | cut -d' ' -f1)
  if [ "$(cat "$stamp" 2>/dev/null)" != "$lock_sum" ]; then
    echo "installing the Appium server for the tests (npm ci in tests/appium)"
    start=$(date +%s)
    if (cd "$appium_dir" && npm ci --prefer-offline --no-audit --no-fund --loglevel=error >/dev/null); then
      echo "$lock_sum" > "$stamp"
      echo "Appium installed in $(( $(date +%s) - start )) s"
    else
      echo "npm ci in tests/appium failed: the Appium tests will say so." >&2
    fi
  fi
fi
if wants node && command -v node >/dev/null 2>&1; then
  # Vite 7 needs Node.js 20.19 or newer (Debian 12's own nodejs is 18).
  if ! node -e 'const [a, b] = process.versions.node.split(".").map(Number); process.exit(a > 20 || (a === 20 && b >= 19) ? 0 : 1)'; then
    echo "the builder needs Node.js 20.19 or newer, and $(node --version) is installed: install a newer nodejs (e.g. from Debian 13 or NodeSource)." >&2
    exit 1
  fi
fi
wants postgresql && echo "test database: ${pg_url}"
exit 0
