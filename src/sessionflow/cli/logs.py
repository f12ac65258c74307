"""Log records as one line each on stderr while a command runs: ``warning: ...``.

Why: without a handler Python prints a record's full traceback; a user of the
command line wants one line per event (a failed reconnect, a skipped message),
the exception's type and text included, not the stack.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager

LOGGERS = ("sessionflow", "alpaca")


class OneLineFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        text = " ".join(record.getMessage().split())
        if record.exc_info and record.exc_info[1] is not None:
            exc = record.exc_info[1]
            text += f" ({type(exc).__name__}: {' '.join(str(exc).split())})"
        return f"{record.levelname.lower()}: {text}"


@contextmanager
def one_line_logs(level: int = logging.WARNING) -> Iterator[None]:
    """Warnings and errors of sessionflow and the Alpaca SDK, one line each, on stderr."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setLevel(level)
    handler.setFormatter(OneLineFormatter())
    for name in LOGGERS:
        logging.getLogger(name).addHandler(handler)
    try:
        yield
    finally:
        for name in LOGGERS:
            logging.getLogger(name).removeHandler(handler)
