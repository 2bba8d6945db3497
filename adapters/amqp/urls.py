"""Broker URLs as settings give them: checked so that TLS is what it says it is.

aiormq reads the TLS files of an `amqps://` URL from its query (`cafile`,
`certfile`, `keyfile`) and silently ignores them on `amqp://`, connecting in
plain text; `no_verify_ssl` trusts any server. Both the gateway's settings and
the partner adapter's check every URL with `check_broker_url` at start, so a
wrong URL stops the process with a clear message instead of connecting without
TLS. Messages name the URL by its position and never hold a path or password.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Final

from yarl import URL

TLS_FILE_KEYS: Final = ("cafile", "certfile", "keyfile")
_HIDDEN_QUERY: Final = frozenset({*TLS_FILE_KEYS, "capath", "cadata"})
_A_URL: Final = re.compile(r"amqps?://[^\s\"'<>]+")


def check_broker_url(url: str, number: int) -> None:
    """ValueError for a URL whose TLS would not be what it says; the message holds no path."""
    try:
        parsed = URL(url)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"broker URL {number} is not a URL") from exc
    if parsed.scheme not in ("amqp", "amqps") or not parsed.host:
        raise ValueError(f"broker URL {number} is not amqp(s)://host[:port]/vhost")
    named = [key for key in TLS_FILE_KEYS if key in parsed.query]
    if named and parsed.scheme != "amqps":
        raise ValueError(
            f"broker URL {number} names {', '.join(named)} but is amqp://: use amqps:// "
            "(plain amqp:// ignores them and connects without TLS)"
        )
    if "no_verify_ssl" in parsed.query:
        raise ValueError(f"broker URL {number}: no_verify_ssl would trust any server")
    if "keyfile" in parsed.query and "certfile" not in parsed.query:
        raise ValueError(f"broker URL {number} names keyfile without certfile")
    for key in named:
        if not Path(parsed.query[key]).is_file():
            raise ValueError(f"broker URL {number}: its {key} is not a file")


def broker_urls(text: str) -> tuple[str, ...]:
    """The node URLs of a comma-separated list (`VTGW_AMQP_URL`), spaces around them dropped."""
    return tuple(part.strip() for part in text.split(",") if part.strip())


def redact(url: str) -> str:
    """The URL for messages and logs: no password, and no paths of its TLS files."""
    try:
        parsed = URL(url)
    except (TypeError, ValueError):
        return "<not a URL>"
    if parsed.password:
        parsed = parsed.with_password("***")
    if any(key in _HIDDEN_QUERY for key in parsed.query):
        parsed = parsed.with_query(
            {k: ("***" if k in _HIDDEN_QUERY else v) for k, v in parsed.query.items()}
        )
    return str(parsed)


def redact_text(text: str) -> str:
    """Every broker URL in a text (a library's log line) redacted."""
    return _A_URL.sub(lambda found: redact(found.group(0)), text)
