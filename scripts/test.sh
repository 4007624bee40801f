#!/usr/bin/env bash
# The project's tests on any machine, fresh or not: provision what it lacks
# (scripts/provision.sh: tshark, chromium, docker.io and a running dockerd, tox in
# .venv), run tox (ruff, mypy --strict, go test, the tests, the conformance suite),
# then stop the dockerd it started.  .ci/run is this script.  Extra arguments go to
# tox, e.g.  scripts/test.sh -e py311 -- tests/test_shard.py
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/provision.sh
log() { printf '\n== %s (%ss)\n' "$*" "$SECONDS"; }
trap stop_engine EXIT

log "system packages"
if ! provision_packages tshark chromium; then
    # Their tests skip without them; CI must have them.
    [[ -z ${CI:-} ]] || { echo "test: cannot install tshark and chromium" >&2; exit 1; }
    echo "test: tshark/chromium cannot be installed here: their tests are skipped" >&2
fi
command -v go >/dev/null || { echo "test: no Go toolchain: go-peer is built on the host" >&2; exit 1; }

log "docker engine"
if ! provision_engine; then
    echo "test: no Docker engine answers and none can be had here (that takes root and" \
        "apt-get); the container tests and the conformance environment need one" >&2
    exit 1
fi

log "python tooling"
provision_venv

log "go module cache"
(cd go-peer && go mod download)

log "tox"
"$SMUXREF_VENV/bin/tox" run "$@"
log "done"
