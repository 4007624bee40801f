#!/usr/bin/env bash
# The main job: provision what this machine lacks (scripts/provision.sh), then run the
# conformance suite against the real Go library (github.com/xtaci/smux, --peer=go's tag
# v1.5.58, v1.5.57 and v1.0.7) through the installed gate command, smux-conformance:
#   - in containers (--peer=go) where a Docker engine answers or can be had (as root
#     with apt-get: docker.io is installed and dockerd started, and left running);
#   - natively on the host (--peer=go-native: the same binary and contract, labelled
#     native in the report) where no engine can be had;
#   - against the reference peer only where there is no Go toolchain at all.
# Reports go to reports/; the exit status is the gate (0 pass, 1 unexpected results,
# 2 usage error, 3 harness error).  Extra arguments go to smux-conformance, e.g.
#   scripts/suite.sh --smux-version=2 -k keepalive
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/provision.sh
provision_venv gate,docker
if ! command -v go >/dev/null; then
    echo "suite: no Go toolchain here, so the Go library cannot be built:" \
        "running against the reference peer (smuxref itself) only" >&2
    peers=(--peer=ref)
elif provision_engine; then
    peers=(--peer=go --peer=go@v1.5.57 --peer=go@v1.0.7)
else
    echo "suite: no Docker engine can be had here: running the Go peer natively" \
        "on the host (--peer=go-native, labelled native in the report)" >&2
    peers=(--peer=go-native --peer=go-native@v1.5.57 --peer=go-native@v1.0.7)
fi
exec "$SMUXREF_VENV/bin/smux-conformance" "${peers[@]}" --report-dir reports -n 2 "$@"
