"""Judging a case: how it is declared, what it checks, and the verdict it ends with.

:mod:`.case` declares a case (``@case``: id, SPEC.md section, level) and defines the
verdicts; :mod:`.checks` is ``smux_check``, which records and grades a case's checks;
:mod:`.oracle` says what a peer did with bad input; :mod:`.blame` names the case to
blame when a failure comes from a fault every case relies on; :mod:`.classify` turns a
phase's exception and checks into one verdict; :mod:`.expectations` says whether that
verdict was expected of the implementation.  The pytest side of it (outcomes, results
files) is :mod:`smuxref_conformance.plugin`.
"""
