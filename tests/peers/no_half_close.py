"""The reference peer on an implementation without half-close: ``close_write`` raises
NotImplementedError, so HALFCLOSE answers UNSUPPORTED (CONTRACT.md rule 19)."""

import sys

from smuxref import aio
from smuxref.peer import main


def _no_half_close(self: aio.Stream) -> None:
    raise NotImplementedError("this implementation cannot half-close a stream")


aio.Stream.close_write = _no_half_close  # type: ignore[method-assign]
sys.exit(main())
