"""Callers of VT's API: a token per calling system, kept as its hash, compared in constant time."""

from __future__ import annotations

import hmac
from pathlib import Path

import pytest

from adapters.http.auth import ApiTokens, bearer_token, hash_token, load_api_tokens, new_token
from gateway.domain.errors import ConfigurationError

TOKEN = "token-of-the-case-system"  # noqa: S105 - a test token


def tokens_of(**tokens: str) -> ApiTokens:
    return ApiTokens.from_mapping({name: hash_token(token) for name, token in tokens.items()})


def test_a_token_is_kept_as_the_sha256_of_its_text() -> None:
    """hash_token gives `sha256:` and 64 lowercase hex digits, the same for the same token."""
    hashed = hash_token(TOKEN)
    assert hashed.startswith("sha256:")
    assert len(hashed) == len("sha256:") + 64
    assert hashed == hash_token(TOKEN) != hash_token(TOKEN + "x")
    assert hashed[7:] == hashed[7:].lower()


def test_a_new_token_is_32_random_bytes_url_safe() -> None:
    """new_token: 43 URL-safe characters, never the same twice."""
    tokens = {new_token() for _ in range(100)}
    assert len(tokens) == 100
    assert all(len(t) == 43 and bearer_token(f"Bearer {t}") == t for t in tokens)


def test_the_right_token_names_its_caller() -> None:
    """authenticate gives the name of the calling system whose token was presented."""
    tokens = tokens_of(zaaksysteem=TOKEN, rapportage="another-token")
    assert tokens.authenticate(TOKEN) == "zaaksysteem"
    assert tokens.authenticate("another-token") == "rapportage"


@pytest.mark.parametrize("presented", [None, "", "wrong", TOKEN + " ", TOKEN.upper(), "\udcff"])
def test_any_other_token_names_nobody(presented: str | None) -> None:
    """No token, a wrong one, or one close to a right one: None."""
    assert tokens_of(zaaksysteem=TOKEN).authenticate(presented) is None


def test_without_configured_callers_nobody_is_authenticated() -> None:
    """An empty tokens file lets nobody in."""
    assert ApiTokens.from_mapping({}).authenticate(TOKEN) is None


def test_every_configured_hash_is_compared_in_constant_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """hmac.compare_digest against each hash, all of them, also when the first one matched."""
    compared: list[bytes] = []
    compare_digest = hmac.compare_digest

    def counting(a: bytes, b: bytes) -> bool:
        compared.append(b)
        return compare_digest(a, b)

    monkeypatch.setattr(hmac, "compare_digest", counting)
    tokens = tokens_of(first=TOKEN, second="b" * 20, third="c" * 20)

    assert tokens.authenticate(TOKEN) == "first"
    assert compared == list(tokens.digests.values())


@pytest.mark.parametrize(
    ("header", "token"),
    [
        ("Bearer abc.DEF-123_~+/=", "abc.DEF-123_~+/="),
        ("bearer abc", "abc"),
        ("BEARER abc", "abc"),
        ("Basic abc", None),
        ("Bearer", None),
        ("Bearer ", None),
        ("Bearer a b", None),
        ("abc", None),
        (None, None),
    ],
)
def test_the_token_is_read_from_the_bearer_scheme_only(
    header: str | None, token: str | None
) -> None:
    """`Authorization: Bearer <token>` (RFC 6750, scheme case-insensitive); anything else: None."""
    assert bearer_token(header) == token


def test_the_tokens_file_names_each_caller_with_the_hash_of_its_token(tmp_path: Path) -> None:
    """load_api_tokens reads `name = "sha256:<hex>"` lines."""
    path = tmp_path / "api-tokens.toml"
    path.write_text(
        f'zaaksysteem = "{hash_token(TOKEN)}"\nrapportage = "{hash_token("other")}"\n',
        encoding="utf-8",
    )
    tokens = load_api_tokens(path)
    assert tokens.callers == {"zaaksysteem", "rapportage"}
    assert tokens.authenticate(TOKEN) == "zaaksysteem"


@pytest.mark.parametrize(
    "content",
    [
        f'zaaksysteem = "{TOKEN}"',
        'zaaksysteem = "sha256:ABCDEF"',
        f'zaaksysteem = "{hash_token(TOKEN).upper()}"',
        "zaaksysteem = 1",
        f'"Zaak Systeem" = "{hash_token(TOKEN)}"',
        f'a = "{hash_token(TOKEN)}"\nb = "{hash_token(TOKEN)}"',
        "zaaksysteem = ",
    ],
    ids=[
        "the token itself",
        "a short hash",
        "uppercase hex",
        "not a text",
        "a name with spaces",
        "two callers with one token",
        "not TOML",
    ],
)
def test_a_wrong_tokens_file_stops_the_gateway(tmp_path: Path, content: str) -> None:
    """Anything but distinct `sha256:<64 hex>` hashes under simple names: ConfigurationError."""
    path = tmp_path / "api-tokens.toml"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(ConfigurationError):
        load_api_tokens(path)


def test_a_missing_tokens_file_stops_the_gateway(tmp_path: Path) -> None:
    """No tokens file: ConfigurationError naming it."""
    with pytest.raises(ConfigurationError, match=r"api-tokens\.toml"):
        load_api_tokens(tmp_path / "api-tokens.toml")
