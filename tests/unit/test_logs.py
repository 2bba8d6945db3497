"""Library log lines name broker URLs: their passwords and TLS file paths never reach a log."""

from __future__ import annotations

import logging

import pytest

from adapters.amqp.urls import redact, redact_text
from gateway.logs import library_records_to_stderr

URL = (
    "amqps://jbg:s3cret-pw@mq.vt-gz.example:5671/vtgw"
    "?cafile=/etc/vtgw/ca.pem&certfile=/etc/vtgw/jbg.pem&keyfile=/etc/vtgw/jbg.key&heartbeat=30"
)


def test_a_url_loses_its_password_and_tls_paths_and_keeps_the_rest() -> None:
    shown = redact(URL)
    assert "s3cret-pw" not in shown
    assert "/etc/vtgw" not in shown
    assert shown.startswith("amqps://jbg:***@mq.vt-gz.example:5671/vtgw?")
    assert "heartbeat=30" in shown


def test_every_url_in_a_text_is_redacted() -> None:
    text = f'Connection attempt to "{URL}" failed: refused; next amqp://guest:guest@mq2:5672/'
    shown = redact_text(text)
    assert "s3cret-pw" not in shown
    assert "jbg.key" not in shown
    assert ":guest@" not in shown
    assert shown.startswith('Connection attempt to "amqps://jbg:***@')


def test_aio_pikas_reconnect_warning_reaches_stderr_redacted(
    capsys: pytest.CaptureFixture[str],
) -> None:
    root = logging.getLogger()
    before = list(root.handlers)
    handler = library_records_to_stderr()  # as configure_logging() installs it at `run`
    try:
        assert handler not in before
        assert library_records_to_stderr() is handler  # once
        logging.getLogger("aio_pika.robust_connection").warning(
            'Connection attempt to "%s" failed: %s. Reconnecting after %r seconds.',
            URL,
            "ConnectionRefusedError",
            5,
        )
        err = capsys.readouterr().err
    finally:
        root.removeHandler(handler)
    assert "Connection attempt to" in err
    assert "s3cret-pw" not in err
    assert "/etc/vtgw" not in err
