"""SMTP out (aiosmtplib): STARTTLS, implicit TLS, or plain for tests; errors translated.

A send is accepted when the server answered 250 to the data of the mail for
at least one recipient. A failure that may pass (server away, 4xx) is a
`TransientError`; a server that refuses every recipient permanently (5xx)
is a `MailRefusedError`, which the publisher records as undeliverable.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from email.message import EmailMessage

import aiosmtplib

from gateway.domain.errors import TransientError


class MailRefusedError(Exception):
    """The SMTP server permanently refused every recipient."""

    def __init__(self, status: str) -> None:
        super().__init__(status)
        self.status = status


@dataclass(frozen=True, slots=True)
class SmtpOut:
    host: str
    port: int
    security: str  # starttls | tls | none
    username: str = ""
    password: str = ""
    timeout: timedelta = timedelta(seconds=30)

    async def send(self, message: EmailMessage, *, sender: str, recipients: Sequence[str]) -> str:
        """Hand the mail to the server; its answer ("250 ...") when accepted."""
        try:
            refused, response = await aiosmtplib.send(
                message,
                sender=sender,
                recipients=list(recipients),
                hostname=self.host,
                port=self.port,
                use_tls=self.security == "tls",
                start_tls=True if self.security == "starttls" else False,  # noqa: SIM210
                username=self.username or None,
                password=self.password or None,
                timeout=self.timeout.total_seconds(),
            )
        except aiosmtplib.SMTPRecipientsRefused as exc:
            codes = [error.code for error in exc.recipients]
            if codes and all(500 <= code < 600 for code in codes):
                raise MailRefusedError(f"{codes[0]} recipients refused") from exc
            raise TransientError(f"smtp: recipients refused for now ({codes})") from exc
        except aiosmtplib.SMTPResponseException as exc:
            if 500 <= exc.code < 600 and isinstance(exc, aiosmtplib.SMTPDataError):
                raise MailRefusedError(f"{exc.code} data refused") from exc
            raise TransientError(f"smtp: {type(exc).__name__} {exc.code}") from exc
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            raise TransientError(f"smtp: {type(exc).__name__}") from exc
        if refused:
            accepted = [r for r in recipients if r not in refused]
            return f"{response} (accepted for {len(accepted)} of {len(recipients)})"
        return response
