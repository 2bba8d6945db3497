"""Reading bounces and replies that reach the bridge (adapters.email.dsn)."""

from __future__ import annotations

from email.message import EmailMessage

from adapters.email.dsn import (
    auto_submitted,
    from_address,
    parse_dsn,
    parse_mail,
    plain_text,
    referenced_ids,
)

ORIGINAL = "<170000000000.1.42@vt-gz.example>"


def dsn(action: str = "failed", returned: str = "headers") -> bytes:
    if returned == "headers":
        tail = f"Content-Type: text/rfc822-headers\n\nMessage-ID: {ORIGINAL}\nSubject: x\n"
    else:
        tail = (
            "Content-Type: message/rfc822\n\n"
            f"Message-ID: {ORIGINAL}\nSubject: x\nContent-Type: text/plain\n\nhello\n"
        )
    return f"""From: MAILER-DAEMON@mx.example
To: brug@vt-gz.example
Subject: Undelivered Mail Returned to Sender
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="b1"

--b1
Content-Type: text/plain

Your message could not be delivered.

--b1
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.example

Final-Recipient: rfc822; overdracht@lokaalteam-tiel.example
Action: {action}
Status: 5.1.1

--b1
{tail}
--b1--
""".encode()


def test_a_failed_dsn_names_the_original_mail_and_status() -> None:
    """Action failed, Status 5.1.1, the Message-ID of the returned headers."""
    bounce = parse_dsn(parse_mail(dsn()))
    assert bounce is not None
    assert (bounce.original_message_id, bounce.status, bounce.failed) == (ORIGINAL, "5.1.1", True)
    assert bounce.recipient == "overdracht@lokaalteam-tiel.example"


def test_a_dsn_returning_the_whole_message_is_read_too() -> None:
    """message/rfc822 instead of text/rfc822-headers: the same Message-ID."""
    bounce = parse_dsn(parse_mail(dsn(returned="message")))
    assert bounce is not None
    assert bounce.original_message_id == ORIGINAL


def test_a_delay_is_no_failure() -> None:
    """Action delayed: reported, but the mail may still arrive."""
    bounce = parse_dsn(parse_mail(dsn(action="delayed")))
    assert bounce is not None
    assert not bounce.failed


def test_an_ordinary_mail_is_no_dsn() -> None:
    """A reply is not a bounce, even when it says 'undeliverable'."""
    mail = EmailMessage()
    mail["From"] = "Test Team <Overdracht@LokaalTeam-Tiel.example>"
    mail["Subject"] = "Re: undeliverable?"
    mail["In-Reply-To"] = ORIGINAL
    mail.set_content("Akkoord. VT-ABCD-EFGH")
    parsed = parse_mail(mail.as_bytes())
    assert parse_dsn(parsed) is None
    assert from_address(parsed) == ("Test Team", "overdracht@lokaalteam-tiel.example")
    assert "VT-ABCD-EFGH" in plain_text(parsed)
    assert referenced_ids(parsed) == [ORIGINAL]
    assert not auto_submitted(parsed)


def test_machine_mail_is_recognised() -> None:
    """Auto-Submitted other than 'no', or a mailing list: never answered."""
    mail = EmailMessage()
    mail["Auto-Submitted"] = "auto-replied"
    assert auto_submitted(mail)
