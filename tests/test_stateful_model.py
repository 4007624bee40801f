"""The ECHO session model of the property-based cases, and their Hypothesis profiles.

The model decides what a conforming peer may answer to any generated sequence, so a
wrong rule there is either a false failure for every peer or a blind spot for every
bug.  These tests feed it hand-made frames: each rule once on the accepting side and
once on the rejecting side, with the SPEC.md section it must cite.
"""

from __future__ import annotations

import pytest
from hypothesis.database import InMemoryExampleDatabase

from smuxref import Cmd, Frame, Upd
from smuxref_conformance.errors import ModelViolation
from smuxref_conformance.stateful.database import KeepingDatabase
from smuxref_conformance.stateful.machine import BadInput
from smuxref_conformance.stateful.model import EchoSessionModel
from smuxref_conformance.stateful.profiles import PROFILES


def model(version: int = 2, **kwargs: int) -> EchoSessionModel:
    m = EchoSessionModel(version, max_frame_size=kwargs.get("max_frame_size"))
    m.sent_open(3, b"ECHO\n")
    m.sent_data(3, b"hello world")
    return m


def section(m: EchoSessionModel, frame: Frame) -> str:
    with pytest.raises(ModelViolation) as exc:
        m.observe(frame)
    return exc.value.section


def test_a_complete_echo_passes() -> None:
    m = model()
    m.observe(Frame(2, Cmd.UPD, 3, Upd(16, 65536).encode()))
    m.observe(Frame(2, Cmd.PSH, 3, b"hello "))
    m.observe(Frame(2, Cmd.NOP, 12345))
    m.observe(Frame(2, Cmd.PSH, 3, b"world"))
    m.sent_fin(3)
    m.observe(Frame(2, Cmd.FIN, 3))
    m.check_complete(None)
    assert m.outcome(None, []).streams == ((3, b"hello world", True),)


@pytest.mark.parametrize(
    ("frame", "where"),
    [
        (Frame(1, Cmd.PSH, 3, b"hello"), "4.1"),  # version 1 byte in a version 2 session
        (Frame(2, 7, 3), "4.2"),  # unknown command
        (Frame(2, Cmd.FIN, 3, b"x"), "4.3"),  # FIN with a payload
        (Frame(2, Cmd.UPD, 3, b"1234"), "4.3"),  # UPD of 4 bytes
        (Frame(2, Cmd.PSH, 3, b"hellO"), "2.1"),  # not the bytes sent
        (Frame(2, Cmd.PSH, 5, b"hello"), "2.1"),  # a stream nobody opened
        (Frame(2, Cmd.SYN, 3), "5.1"),  # the peer opens the suite's parity
        (Frame(2, Cmd.FIN, 3), "10.2"),  # FIN before the suite's FIN
        (Frame(2, Cmd.UPD, 3, Upd(17, 65536).encode()), "9.2"),  # more than 5 + 11 sent
        (Frame(2, Cmd.UPD, 3, Upd(0, 2**31).encode()), "4.4"),
    ],
)
def test_rule_violations(frame: Frame, where: str) -> None:
    assert section(model(), frame) == where


def test_empty_psh_is_no_violation() -> None:
    """A zero-length PSH is a SHOULD NOT for its sender (SPEC.md 6.1): it carries no data and
    every tag of Go ignores it, so the model must accept it and still expect the echo."""
    m = model()
    m.observe(Frame(2, Cmd.PSH, 3))
    m.observe(Frame(2, Cmd.PSH, 3, b"hello world"))
    m.sent_fin(3)
    m.observe(Frame(2, Cmd.FIN, 3))
    m.check_complete(None)


def test_upd_in_version_1() -> None:
    assert section(model(1), Frame(1, Cmd.UPD, 3, Upd(0, 0).encode())) == "4.2"


def test_frame_size_is_checked_only_when_configured() -> None:
    model().observe(Frame(2, Cmd.PSH, 3, b"hello world"))
    assert section(model(max_frame_size=4), Frame(2, Cmd.PSH, 3, b"hello")) == "6.1"


def test_fin_after_the_suites_fin_needs_all_data() -> None:
    m = model()
    m.observe(Frame(2, Cmd.PSH, 3, b"hello"))
    m.sent_fin(3)
    assert section(m, Frame(2, Cmd.FIN, 3)) == "10.4"
    m2 = model()
    m2.sent_fin(3)
    m2.observe(Frame(2, Cmd.PSH, 3, b"hello world"))
    m2.observe(Frame(2, Cmd.FIN, 3))
    assert section(m2, Frame(2, Cmd.PSH, 3, b"!")) == "10.3"


def test_unknown_ids_must_not_be_answered() -> None:
    m = model()
    m.sent_unknown(8)
    assert section(m, Frame(2, Cmd.PSH, 8, b"x")) == "5.5"


def test_after_an_invalid_header() -> None:
    m = model()
    m.sent_invalid("BadInput(VER 0 on PSH)", {3: b"poison"})
    m.sent_canary(5, b"ECHO\n")
    m.observe(Frame(2, Cmd.PSH, 3, b"hello"))  # earlier data may still come back
    m.observe(Frame(2, Cmd.FIN, 3))  # and the stream may end early
    assert section(m, Frame(2, Cmd.PSH, 5, b"canary")) == "4.6"
    m2 = model()
    m2.sent_invalid("BadInput(VER 0 on PSH)", {3: b"poison"})
    assert section(m2, Frame(2, Cmd.PSH, 3, b"hello worldpoison")) == "4.6"
    m3 = model()
    m3.sent_truncated(3, b"partial")
    assert section(m3, Frame(2, Cmd.PSH, 3, b"hello worldpartial")) == "4.5"


def test_incomplete_echo_at_the_end() -> None:
    m = model()
    m.observe(Frame(2, Cmd.PSH, 3, b"hello"))
    with pytest.raises(ModelViolation) as exc:
        m.check_complete("eof")
    assert exc.value.section == "10.2"
    assert "5 of 11 bytes" in exc.value.actual


def test_outcomes_compare_refusals_alike() -> None:
    closed, silent = model(), model()
    for m in (closed, silent):
        m.sent_invalid("x")
    assert closed.outcome("closed", []) == silent.outcome("silent", [])
    assert closed.outcome("closed", []) != silent.outcome("ignored", [])


def test_bad_input_repr_and_truncation() -> None:
    cut = BadInput("truncate", cmd=Cmd.PSH, length=4, keep=100)
    assert cut.sent == 11  # never the whole frame
    assert repr(cut) == "BadInput(PSH LEN 4 cut after 11 of 12 bytes)"
    assert repr(BadInput("version", version=0, cmd=Cmd.SYN)) == "BadInput(VER 0 on SYN)"


def test_keeping_database_ignores_deletions_only() -> None:
    inner = InMemoryExampleDatabase()
    db = KeepingDatabase(inner)
    db.save(b"k", b"one")
    db.delete(b"k", b"one")
    assert set(db.fetch(b"k")) == {b"one"}
    db.move(b"k", b"k.secondary", b"one")
    assert set(db.fetch(b"k")) == set()
    assert set(db.fetch(b"k.secondary")) == {b"one"}


def test_profiles() -> None:
    ci, deep = PROFILES["ci"], PROFILES["deep"]
    assert ci.seed is not None
    assert deep.seed is None
    assert not ci.writable_db
    assert deep.writable_db
    settings = ci.settings()
    assert settings.deadline is None
    assert not settings.derandomize
    assert "ReadOnlyDatabase" in repr(settings.database)
    assert ci.settings() is settings or ci.settings() == settings
    assert "KeepingDatabase" in repr(deep.settings().database)
