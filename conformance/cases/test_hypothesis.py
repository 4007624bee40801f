"""Property-based cases: random frame sequences against a model of ECHO sessions.

The other cases each send one hand-written sequence.  These let Hypothesis write the
sequences (see :mod:`smuxref_conformance.stateful.machine` for the rules and
:mod:`smuxref_conformance.stateful.model` for what a conforming peer may answer), so that
combinations nobody thought of - a command line split across two PSH frames and three
segments, a zero-length PSH between two streams, a duplicate SYN after a UPD with
window 0 - are tried too.

``test_stateful_echo`` checks every peer against the model.  ``test_differential_echo``
sends each generated sequence to a baseline peer and to the peer under test at once and
compares what they did; it runs when two or more ``--peer`` are given (each peer other
than the baseline against it) or with ``--smux-differential``.  The baseline is the
reference peer unless ``--smux-differential-against=PEER`` names another, so any two
implementations of the matrix can be compared (``--peer=rust-smux
--smux-differential-against=go``).

Budgets come from ``--smux-hypothesis-profile`` (``ci``: fixed seed, stored examples
from conformance/hypothesis-db replayed read-only; ``deep``: long and random, failures
saved there).  A failure is shrunk to a minimal program, whose transcript and the
``python -m smuxref_conformance.record promote`` command for its bytes are in the failure text.
"""

from __future__ import annotations

from typing import Any, Final

import pytest

from smuxref_conformance.errors import ModelViolation, section_label
from smuxref_conformance.judge.case import case
from smuxref_conformance.judge.checks import SmuxCheck, not_run
from smuxref_conformance.peers.pool import PeerPool
from smuxref_conformance.peers.specs import PeerSpec, parse_peer
from smuxref_conformance.plugin import PEERS
from smuxref_conformance.plugin.access import PeerServer, verdicts
from smuxref_conformance.stateful.machine import (
    DifferentialMismatch,
    MachineEnv,
    PooledServer,
    SequenceFailure,
    run_machine,
)
from smuxref_conformance.stateful.profiles import profile_for

#: The peers' MaxFrameSize in these cases: small enough that large writes are split and
#: that a peer ignoring the option is seen (SPEC.md 6.1).
MAX_FRAME_SIZE: Final = 2048

_FIN_RULE: Final = (
    "A receiver of FIN MUST deliver all data that arrived before the FIN, and then signal "
    "end of stream to its application."
)


def _notes(exc: BaseException) -> str:
    """What Hypothesis attached to the failure (the falsifying program, the blob),
    from the exception and from those it groups."""
    notes = [str(n) for n in getattr(exc, "__notes__", [])]
    if isinstance(exc, BaseExceptionGroup):
        notes += [_notes(inner) for inner in exc.exceptions]
    return "\n".join(n for n in notes if n)


def _first(exc: BaseException, kind: type[BaseException]) -> BaseException | None:
    """``exc`` itself or the first ``kind`` inside it (Hypothesis wraps a failure that
    did not reproduce on replay in a FlakyFailure group)."""
    if isinstance(exc, kind):
        return exc
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            found = _first(inner, kind)
            if found is not None:
                return found
    return None


def _run(env: MachineEnv, config: pytest.Config, smux_check: SmuxCheck) -> None:
    """Run the machine; turn its (shrunk) failure into the case's verdict."""
    __tracebackhide__ = True
    profile = profile_for(config)
    smux_check.info(f"hypothesis profile {profile.name}: {profile.description}")
    try:
        run_machine(env, profile)
    except (AssertionError, BaseExceptionGroup) as exc:
        flaky = "" if isinstance(exc, AssertionError) else " (it did not fail again on replay)"
        failure = _first(exc, SequenceFailure)
        mismatch = _first(exc, DifferentialMismatch)
        program = _notes(exc)
        if failure is None and mismatch is None:
            raise
    else:
        return
    # Reported outside the except block, so the failure text is not chained to
    # Hypothesis' own traceback (which says the same thing again).
    if isinstance(failure, SequenceFailure):
        violation: ModelViolation = failure.violation
        smux_check.expect(
            False,
            expected=f"{violation.expected} [{section_label(violation.section)}: "
            f"{violation.requirement}]",
            actual=f"{violation.actual}{flaky}\n{failure.details}\n{program}",
        )
    smux_check.expect(
        False,
        expected="the same outcome as the baseline peer for every sequence",
        actual=f"{mismatch}{flaky}\n{program}",
    )


@case(
    "smux/10.2/stateful-echo",
    title="Random valid and invalid frame sequences on ECHO streams follow the session model",
    spec="10.2",
    requirement=_FIN_RULE,
    level="must",
    rules="open_echo write fin nop upd to_unknown_stream duplicate_syn flush invalid",
)
@pytest.mark.peer_config(max_frame_size=MAX_FRAME_SIZE)
def test_stateful_echo(  # noqa: PLR0917 - pytest passes fixtures positionally
    peer: PeerSpec,
    smux_version: int,
    peer_server: PeerServer,
    peer_options: dict[str, Any],
    smux_pool: PeerPool,
    smux_check: SmuxCheck,
    pytestconfig: pytest.Config,
) -> None:
    """Each example is a new connection with a random sequence of frames in random
    segments; every frame of the peer is checked as it arrives, every stream must echo
    its data and end with FIN after the suite's FIN, and an invalid input must be met
    by a close or silence, never by processing what follows it."""
    target = PooledServer(peer.id, smux_pool, peer, smux_version, peer_options, peer_server.handle)
    env = MachineEnv(smux_version, (target,), max_frame_size=MAX_FRAME_SIZE)
    _run(env, pytestconfig, smux_check)


@case(
    "smux/10.2/differential-echo",
    title="The same random sequences give the same outcome on the peer and on a baseline peer",
    spec="10.2",
    requirement=_FIN_RULE,
    level="must",
)
@pytest.mark.peer_config(max_frame_size=MAX_FRAME_SIZE)
def test_differential_echo(  # noqa: PLR0917 - pytest passes fixtures positionally
    peer: PeerSpec,
    smux_version: int,
    peer_server: PeerServer,
    peer_options: dict[str, Any],
    smux_pool: PeerPool,
    smux_check: SmuxCheck,
    pytestconfig: pytest.Config,
) -> None:
    """Each example goes to the baseline peer and to this peer, byte for byte and
    segment for segment; the per-stream echo and FIN, the reaction to the invalid
    input (closed and silent both count as refused) and the model rules broken must be
    the same."""
    try:
        base = parse_peer(str(pytestconfig.getoption("smux_differential_against")))
    except ValueError as exc:
        raise pytest.UsageError(f"--smux-differential-against: {exc}") from None
    if peer.raw == base.raw:
        not_run(f"{base.id} is the baseline of the differential case")
    if len(pytestconfig.stash[PEERS]) < 2 and not pytestconfig.getoption("smux_differential"):
        not_run("differential runs need a second --peer, or --smux-differential")
    with verdicts():
        baseline = smux_pool.server(base, smux_version, peer_options)
    targets = (
        PooledServer(base.id, smux_pool, base, smux_version, peer_options, baseline),
        PooledServer(peer.id, smux_pool, peer, smux_version, peer_options, peer_server.handle),
    )
    env = MachineEnv(smux_version, targets, max_frame_size=MAX_FRAME_SIZE)
    _run(env, pytestconfig, smux_check)
