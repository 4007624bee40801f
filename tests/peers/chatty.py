"""Broken: a working server that keeps writing to stdout after LISTENING (rule 4)."""

import _server


def chatter() -> None:
    print("debug: accepted the listening socket", flush=True)


_server.run(after_listening=chatter)
