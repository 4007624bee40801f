"""Hypothesis profiles of the conformance suite, chosen with ``--smux-hypothesis-profile``.

The property-based cases talk to real peers over TCP, so Hypothesis' defaults do not
fit: a 200 ms deadline per example is meaningless for network I/O, and a random seed
per run would make the gate flaky (a different sequence each run, a failure nobody can
reproduce).  Two profiles:

``ci`` (default, the gate)
    Bounded and deterministic: a fixed seed, few examples of few steps, no deadline.
    It first replays the examples stored in ``conformance/hypothesis-db/`` (committed,
    a directory-based database opened read-only, so a CI run never writes to the
    checkout), then generates the same fresh examples every run.

``deep`` (nightly)
    Many more and longer examples with a fresh seed per run.  It writes every failing
    example it finds to ``conformance/hypothesis-db/`` and never deletes one
    (:class:`~smuxref_conformance.stateful.database.KeepingDatabase`); committing the new files
    makes the ``ci`` profile replay them from then on, against every peer.

The suite's profiles are registered under the names ``smux-ci`` and ``smux-deep`` so
they never replace Hypothesis' own ``ci`` profile, which the project's unit tests use.
Nothing here imports Hypothesis until a case asks for a profile: the plugin loads this
module in every pytest run.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Final

import pytest

if TYPE_CHECKING:
    from hypothesis import settings as Settings

__all__ = ["DB_DIR", "PROFILES", "Profile", "add_options", "profile_for"]

#: The committed example database (Hypothesis' DirectoryBasedExampleDatabase layout).
DB_DIR: Final = Path(__file__).resolve().parents[1] / "hypothesis-db"
#: The seed of the ``ci`` profile; changing it changes which examples the gate runs.
CI_SEED: Final = 20260313


@dataclass(frozen=True)
class Profile:
    """One profile: Hypothesis settings plus the seed (None: a fresh one per run)."""

    name: str
    max_examples: int
    stateful_step_count: int
    seed: int | None
    writable_db: bool
    description: str

    def settings(self) -> Settings:
        """The Hypothesis settings, registered as ``smux-<name>`` on first use."""
        # Imported here, not at the top: the plugin imports this module in every run.
        from hypothesis import HealthCheck, Phase, settings  # noqa: PLC0415
        from hypothesis.database import (  # noqa: PLC0415
            DirectoryBasedExampleDatabase,
            ReadOnlyDatabase,
        )

        from .database import KeepingDatabase  # noqa: PLC0415

        key = f"smux-{self.name}"
        try:
            return settings.get_profile(key)
        except Exception:  # InvalidArgument: not registered yet
            pass
        DB_DIR.mkdir(exist_ok=True)
        directory = DirectoryBasedExampleDatabase(str(DB_DIR))
        settings.register_profile(
            key,
            max_examples=self.max_examples,
            stateful_step_count=self.stateful_step_count,
            deadline=None,
            derandomize=False,  # a fixed seed instead: derandomize would disable the database
            database=KeepingDatabase(directory)
            if self.writable_db
            else ReadOnlyDatabase(directory),
            # explain re-runs variations of a failure to annotate it: many extra
            # round trips to a peer for little gain.
            phases=(Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink),
            report_multiple_bugs=False,
            print_blob=True,
            suppress_health_check=[
                HealthCheck.too_slow,
                HealthCheck.data_too_large,
                HealthCheck.filter_too_much,
            ],
        )
        return settings.get_profile(key)


PROFILES: Final = {
    "ci": Profile(
        "ci",
        max_examples=80,
        stateful_step_count=15,
        seed=CI_SEED,
        writable_db=False,
        description="bounded and deterministic: stored examples, then a fixed seed",
    ),
    "deep": Profile(
        "deep",
        max_examples=400,
        stateful_step_count=40,
        seed=None,
        writable_db=True,
        description="nightly: many long examples, failures saved to conformance/hypothesis-db",
    ),
}


def add_options(group: pytest.OptionGroup) -> None:
    """The suite's Hypothesis options (called from the plugin's pytest_addoption)."""
    group.addoption(
        "--smux-hypothesis-profile",
        choices=sorted(PROFILES),
        default="ci",
        help="property-based cases: ci (default; bounded, fixed seed, stored examples "
        "read-only) or deep (nightly; long, random, failures saved to conformance/hypothesis-db)",
    )
    group.addoption(
        "--smux-differential",
        action="store_true",
        help="run the differential property case (each --peer against the baseline peer) "
        "even when only one --peer is given",
    )
    group.addoption(
        "--smux-differential-against",
        default="ref",
        metavar="PEER",
        help="the baseline of the differential case: any --peer value (default ref), so that "
        "any two implementations can be compared, e.g. --peer=rust-smux "
        "--smux-differential-against=go",
    )


def profile_for(config: pytest.Config) -> Profile:
    """The profile ``--smux-hypothesis-profile`` selected."""
    return PROFILES[str(config.getoption("smux_hypothesis_profile"))]
