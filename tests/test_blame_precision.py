"""The precision table's switches are the suite's switches (conformance.precision)."""

from __future__ import annotations

from conformance.bugs import BUGS
from conformance.precision import TARGETS, judge


def test_every_switch_has_targets() -> None:
    assert set(TARGETS) == set(BUGS)


def test_judge_sorts_catches_strays_and_blame() -> None:
    def row(case: str, actual: str, blame: str | None = None) -> dict[str, object]:
        return {"case": case, "actual": actual, "version": 1, "role": "server", "blame": blame}

    rows = [
        row("smux/10.4/fin-after-all-data", "fail"),
        row("smux/10.2/write-after-peer-fin", "inconclusive", "smux/10.4/fin-after-all-data"),
        row("smux/5.4/duplicate-syn-ignored", "inconclusive", "smux/4.1/version-on-nop"),
        row("smux/10.3/data-after-fin-delivered", "fail"),
        row("smux/11/interop-exit", "pass"),
    ]
    line = judge("no-fin", rows)
    assert line.caught == ["smux/10.4/fin-after-all-data v1 server: fail"]
    assert line.stray == ["smux/10.3/data-after-fin-delivered v1 server: fail"]
    assert line.inconclusive == 2
    assert len(line.misblamed) == 1
    assert not line.ok
