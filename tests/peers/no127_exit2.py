"""Broken: an unknown option gives argparse's usual exit status 2, not 127 (rule 3)."""

import argparse
import sys

from _contract import log_start

log_start(sys.argv[1:])
p = argparse.ArgumentParser()
p.add_argument("--role")
p.add_argument("--addr")
p.add_argument("--version")
p.parse_args()
