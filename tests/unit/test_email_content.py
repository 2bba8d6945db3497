"""The bridge's mails carry no case content (adapters.email.content, outbound.mail_facts)."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from adapters.email.content import MailFacts, Sender, compose, deadline_of, polite_reply
from adapters.email.tokens import case_handle, confirmation_code

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
SECRET = b"k" * 32
SENDER = Sender("overdracht-brug@vt-gz.example", "Veilig Thuis Gelderland-Zuid")


def personal_data(example: dict[str, Any]) -> set[str]:
    """Every name, birth date, BSN, address part, contact and free text of an example."""
    found: set[str] = set()

    def walk(value: Any, key: str = "") -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                walk(v, k)
        elif isinstance(value, list):
            for v in value:
                walk(v, key)
        elif isinstance(value, str) and key not in {
            "moment",
            "rol",
            "positie",
            "plaats",
            "reden",
            "aanvrager_type",
            "status",
            "indicatie_bekend",
            "persoon_id",
            "code",
            "pointer",
            "reden_geen_monitoring",
            "organisatie",  # an organisation's name is no personal data
            "woonplaats",  # the team's own municipality: its name says it
        }:
            found.update(part[:40] for part in value.splitlines() if len(part) >= 4)

    walk(example["body"])
    if "case" in example:
        found.add(example["case"]["ref"])
    return found


def mail_of(example: dict[str, Any]) -> str:
    body, message_type = example["body"], example["type"]
    facts = MailFacts(
        team_name="Lokaal team Tiel",
        message_type=message_type,
        case_handle=case_handle(SECRET, example["case"]["ref"]) if "case" in example else None,
        deadline=deadline_of(message_type, body),
        confirmation_code=confirmation_code(SECRET, example["id"]),
        link=f"https://vtgw.example/bridge/m/{example['id']}/tok.en",
        link_expires=NOW + timedelta(days=7),
        actionable=message_type in ("overdracht.notice", "enrichment.request"),
        error_code=body.get("code") if message_type == "error" else None,
    )
    mail = compose(facts, sender=SENDER, to=("overdracht@lokaalteam-tiel.example",), now=NOW)
    text = mail.get_body(preferencelist=("plain",))
    html = mail.get_body(preferencelist=("html",))
    assert text is not None
    assert html is not None
    return f"{mail.as_string()}\n{text.get_content()}\n{html.get_content()}"


def test_every_mail_of_every_example_type_is_free_of_its_personal_data(
    examples: dict[str, dict[str, Any]],
) -> None:
    """Names, birth dates, BSNs, addresses, free texts and case refs of the examples: none."""
    for message_type, example in examples.items():
        mail = mail_of(example)
        for value in personal_data(example):
            if message_type == "error":
                continue  # an error's detail names a rule, never data; and is not mailed
            assert value not in mail, (message_type, value)
        assert not re.search(r"\b\d{9}\b", mail), message_type  # no BSN-like number


def test_a_notice_mail_names_kind_handle_deadline_code_and_link(
    examples: dict[str, dict[str, Any]],
) -> None:
    """What the team needs to act, in Dutch, in both parts."""
    example = examples["overdracht.notice"]
    mail = mail_of(example)
    assert "Overdracht van een casus" in mail
    assert case_handle(SECRET, example["case"]["ref"]) in mail
    assert "maandag 30 november 2026" in mail
    assert confirmation_code(SECRET, example["id"]) in mail
    assert f"/bridge/m/{example['id']}/" in mail


def test_a_mail_has_a_message_id_and_says_it_is_automatic(
    examples: dict[str, dict[str, Any]],
) -> None:
    """Message-ID of the bridge's domain (replies and bounces match it); Auto-Submitted."""
    facts = MailFacts("Lokaal team Tiel", "receipt", None, None, None, None, None, False)
    mail = compose(facts, sender=SENDER, to=("a@b.example",), now=NOW)
    assert str(mail["Message-ID"]).endswith("@vt-gz.example>")
    assert mail["Auto-Submitted"] == "auto-generated"
    del examples


@pytest.mark.parametrize("reason", ["er stond geen geldige bevestigingscode in"])
def test_the_polite_reply_echoes_nothing(reason: str) -> None:
    """The answer to an unusable mail points to the link and quotes nothing of it."""
    reply = polite_reply(
        sender=SENDER, to="x@y.example", in_reply_to="<a@b>", reason=reason, now=NOW
    )
    text = reply.get_content()
    assert "link" in text
    assert reply["In-Reply-To"] == "<a@b>"
    assert json.dumps(text)  # plain text, serialisable
