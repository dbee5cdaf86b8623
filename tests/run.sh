#!/usr/bin/env bash
# Runs robin's whole test suite, installing first what the tests need on a fresh machine.
# This is the test command README.md gives, and the one .ci/run runs.
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages: pkg-config and libssl-dev to build SQLCipher (rusqlite's bundled-sqlcipher
# links the system libcrypto), systemd for systemd-analyze, which checks the unit files.
missing=()
command -v systemd-analyze >/dev/null || missing+=(systemd)
command -v pkg-config >/dev/null || missing+=(pkg-config)
[[ -x /usr/bin/chromium ]] || missing+=(chromium)
pkg-config --exists libcrypto 2>/dev/null || missing+=(libssl-dev)
if ((${#missing[@]})); then
    if [[ $(id -u) -eq 0 ]]; then
        echo "tests/run.sh: installing ${missing[*]}"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    else
        echo "tests/run.sh: please install: sudo apt-get install ${missing[*]}" >&2
        exit 1
    fi
fi

# Python peers: the websockets client (tests/python_client.rs), pytest for the bridge client
# (tests/python/test_bridge.py) and the benchmark peers.
venv=tests/.venv
if [[ ! -x $venv/bin/python ]] || ! cmp -s tests/python/requirements.txt "$venv/requirements.txt"; then
    echo "tests/run.sh: preparing $venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check -r tests/python/requirements.txt
    cp tests/python/requirements.txt "$venv/requirements.txt"
fi

# The status page's browser test: playwright-core drives Debian's Chromium (no browser download).
if [[ ! -d tests/browser/node_modules/playwright-core ]]; then
    echo "tests/run.sh: installing playwright-core into tests/browser"
    npm install --silent --no-audit --no-fund --prefix tests/browser >/dev/null
fi

cargo test --locked "$@"

# The Python bridge client against the robind that cargo test just built.
ROBIND="${CARGO_TARGET_DIR:-target}/debug/robind" timeout 600 "$venv/bin/python" -m pytest -q tests/python
