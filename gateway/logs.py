"""Structured JSON logs: ids, types, parties and outcomes; never a body or personal data.

The gateway's own events are structlog JSON lines on stdout. The libraries'
records (aio-pika's reconnect warnings, aiormq) go through the standard
logging module to stderr, WARNING and up; they name broker URLs, so every
such line passes `BrokerUrlsRedacted` first: no password, no path of a TLS
key or certificate reaches a log.
"""

from __future__ import annotations

import logging
import sys

import structlog

from adapters.amqp.urls import redact_text


class BrokerUrlsRedacted(logging.Filter):
    """Rewrites a record's message with every broker URL in it redacted."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg, record.args = redact_text(record.getMessage()), None
        return True


def configure_logging(level: int = logging.INFO) -> None:
    """JSON lines on stdout, one event a line, with time and level; library records on stderr."""
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(sys.stdout),
        cache_logger_on_first_use=True,
    )
    library_records_to_stderr()


def library_records_to_stderr() -> logging.Handler:
    """The root logger's handler of the libraries' records: stderr, WARNING and up, redacted.

    Added once; a second call returns the handler already there.
    """
    root = logging.getLogger()
    for handler in root.handlers:
        if any(isinstance(f, BrokerUrlsRedacted) for f in handler.filters):
            return handler
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(BrokerUrlsRedacted())
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.setLevel(logging.WARNING)
    root.addHandler(handler)
    return handler
