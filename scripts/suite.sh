#!/usr/bin/env bash
# The main job: set up, then run the conformance suite against the containerized Go
# peer (github.com/xtaci/smux v1.5.57 and v1.0.7).  Where no Docker engine can be had,
# it runs the suite against the embedded reference peer instead, and says so.
# Extra arguments go to pytest, e.g.  scripts/suite.sh --smux-version=2 -k keepalive
set -euo pipefail
cd "$(dirname "$0")/.."
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore
python3 -m pip install -q -e '.[test,docker]'

docker_ok() { python3 -c 'import docker,sys; docker.from_env().ping()' >/dev/null 2>&1; }
if ! docker_ok && command -v dockerd >/dev/null && [[ $(id -u) == 0 ]]; then
    echo "suite: starting dockerd (vfs storage, no iptables)" >&2
    dockerd --storage-driver=vfs --iptables=false >/tmp/smuxref-dockerd.log 2>&1 &
    for _ in $(seq 1 120); do docker_ok && break; sleep 0.5; done
fi
mkdir -p reports
if docker_ok && command -v go >/dev/null; then
    peers=(--peer=go --peer=go@v1.0.7)
else
    echo "suite: no Docker engine (or no Go toolchain) here: running against the reference peer only" >&2
    peers=(--peer=ref)
fi
exec python3 -m pytest conformance "${peers[@]}" --smux-report-dir=reports "$@"
