#!/usr/bin/env bash
# What a fresh machine lacks, provisioned by one piece of code for every entry point:
# scripts/suite.sh (the main job), scripts/test.sh (the project's tests, which .ci/run
# runs) source this file and call what they need.  Run directly, it provisions all.
#
#   provision_packages CMD[:PKG]...  apt-get install PKG (default CMD) for each missing
#                                    CMD; root with apt-get only, else returns 1
#   provision_engine                 a Docker engine that answers: installs docker.io and
#                                    starts dockerd (vfs storage, no iptables) as root;
#                                    returns 1 where no engine can be had
#   stop_engine                      stop the dockerd that provision_engine started
#   provision_venv [EXTRAS]          .venv with tox, and smuxref installed editable with
#                                    EXTRAS when given; sets SMUXREF_VENV
#
# SMUXREF_PROVISION=0 installs and starts nothing, using what is there: for machines
# that must not be changed, and for trying the fallbacks.
SMUXREF_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export DEBIAN_FRONTEND=noninteractive
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore
SMUXREF_DOCKERD_PID=""
SMUXREF_DOCKERD_LOG=${TMPDIR:-/tmp}/smuxref-dockerd.log
SMUXREF_VENV=$SMUXREF_ROOT/.venv

_may_provision() {
    [[ ${SMUXREF_PROVISION:-1} != 0 && $(id -u) == 0 ]] && command -v apt-get >/dev/null
}

_apt_install() {
    _may_provision || return 1
    echo "provision: apt-get install $*" >&2
    apt-get update -qq && apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

provision_packages() {
    local missing=() item
    for item in "$@"; do
        command -v "${item%%:*}" >/dev/null || missing+=("${item#*:}")
    done
    ((${#missing[@]} == 0)) || _apt_install "${missing[@]}"
}

engine_answers() {
    command -v docker >/dev/null && docker info >/dev/null 2>&1
}

provision_engine() {
    engine_answers && return 0
    _may_provision || return 1
    provision_packages dockerd:docker.io || return 1
    echo "provision: starting dockerd (vfs storage, no iptables; log in $SMUXREF_DOCKERD_LOG)" >&2
    dockerd --storage-driver=vfs --iptables=false >"$SMUXREF_DOCKERD_LOG" 2>&1 &
    SMUXREF_DOCKERD_PID=$!
    local _
    for _ in $(seq 1 120); do
        engine_answers && return 0
        if ! kill -0 "$SMUXREF_DOCKERD_PID" 2>/dev/null; then
            echo "provision: dockerd exited; its log:" >&2
            tail -n 30 "$SMUXREF_DOCKERD_LOG" >&2
            SMUXREF_DOCKERD_PID=""
            return 1
        fi
        sleep 0.5
    done
    echo "provision: dockerd did not answer within 60 s" >&2
    stop_engine
    return 1
}

stop_engine() {
    if [[ -n $SMUXREF_DOCKERD_PID ]]; then
        kill "$SMUXREF_DOCKERD_PID" 2>/dev/null || true
        wait "$SMUXREF_DOCKERD_PID" 2>/dev/null || true
        SMUXREF_DOCKERD_PID=""
    fi
}

provision_venv() {
    if [[ ! -x $SMUXREF_VENV/bin/python ]]; then
        # Debian's own python3 makes virtual environments only with python3-venv.
        python3 -c 'import ensurepip' 2>/dev/null || _apt_install python3-venv || return 1
        python3 -m venv "$SMUXREF_VENV" || return 1
    fi
    local wanted=('tox>=4')
    [[ -z ${1:-} ]] || wanted+=(-e "$SMUXREF_ROOT[$1]")
    "$SMUXREF_VENV/bin/python" -m pip install -q "${wanted[@]}"
}

if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
    set -euo pipefail
    provision_packages tshark chromium
    provision_engine || echo "provision: no Docker engine can be had here" >&2
    provision_venv test,scapy,docker,fuzz
fi
