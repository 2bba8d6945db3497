"""The partners' broker users, over RabbitMQ's management HTTP API.

For every party whose contract's transport is AMQP: a broker user named
exactly the party id, without tags (no management access), and in the vhost
exactly the permissions of PROTOCOL.md ("AMQP mapping"):

| permission | regex                       | so the party may                     |
|------------|-----------------------------|--------------------------------------|
| configure  | `^$`                        | declare and delete nothing           |
| write      | `^vtgw\\.in$`                | publish to `vtgw.in` only            |
| read       | `^vtgw\\.out\\.<party id>$`   | consume its own inbox only           |

The party's password (`secrets.token_urlsafe`) is written, before the user is
created, to `<credentials_dir>/<party>.env` (mode 0600): `KEY=value` lines an
operator can hand to the party as they are (a shell, `docker --env-file` and
systemd's `EnvironmentFile=` all read them), with the whole AMQP URL in
`VTGW_AMQP_URL`. Over TLS the broker URL given here carries the partners'
TLS files as its query (`amqps://mq.example:5671?cafile=/etc/vtgw-partner/ca.pem&
certfile=/etc/vtgw-partner/client.pem&keyfile=/etc/vtgw-partner/client.key`:
paths on the partner's machine, the same for every partner), and every
partner's URL keeps it.

Provisioning is idempotent. A party whose user exists and whose credentials
file holds the broker's password is left as it is; tags and permissions that
differ from the above are set back (and listed as changes). A user whose
password is not known here (no credentials file, an unusable one, or one whose
password the broker does not accept) is *reported*, never silently given a new
password: `reset=True` gives exactly those users a new password and a new
file. To rotate one party's password: delete its file and provision with
`reset=True`. A user that is missing while its file exists is created again
with the file's password, so the party's configuration keeps working.

The gateway's own broker user is the operator's and is not touched here.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
import stat
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any, Final
from urllib.parse import quote

import aiohttp
from yarl import URL

from adapters.amqp.topology import IN_EXCHANGE, amqp_parties, inbox_queue
from gateway.domain.contracts import Contracts
from gateway.domain.errors import ConfigurationError, TransientError

DEFAULT_AMQP_PORT: Final = 5672
DEFAULT_TIMEOUT: Final = 30.0
CREDENTIALS_SUFFIX: Final = ".env"
CREDENTIALS_MODE: Final = 0o600

URL_KEY: Final = "VTGW_AMQP_URL"
USER_KEY: Final = "VTGW_AMQP_USER"
PASSWORD_KEY: Final = "VTGW_AMQP_PASSWORD"  # noqa: S105 - the key's name, not a password

TLS_QUERY_KEYS: Final = frozenset({"cafile", "capath", "cadata", "certfile", "keyfile"})
"""The query parameters of an AMQP URL that aiormq reads for TLS (and ignores without amqps)."""

_REGEX_SPECIAL: Final = frozenset("\\^$.|?*+()[]{}")
_HASHES: Final[Mapping[str, Callable[[bytes], Any]]] = {
    "rabbit_password_hashing_sha256": hashlib.sha256,
    "rabbit_password_hashing_sha512": hashlib.sha512,
}
_SALT_BYTES: Final = 4


class Outcome(StrEnum):
    """What provisioning did for one party."""

    CREATED = "created"
    UPDATED = "updated"
    UNCHANGED = "unchanged"
    REPORTED = "reported"
    """Needs the operator: see the entry's `problem`."""


@dataclass(frozen=True, slots=True)
class Permissions:
    """A user's permissions in one vhost: three regexes over resource names."""

    configure: str
    write: str
    read: str

    def as_body(self) -> dict[str, str]:
        return {"configure": self.configure, "write": self.write, "read": self.read}


def partner_permissions(party: str) -> Permissions:
    """PROTOCOL.md: write only `vtgw.in`, read only the party's own inbox, configure nothing."""
    return Permissions(
        configure="^$",
        write=f"^{regex_literal(IN_EXCHANGE)}$",
        read=f"^{regex_literal(inbox_queue(party))}$",
    )


def regex_literal(text: str) -> str:
    """`text` as a regex matching exactly itself (RabbitMQ's regexes are PCRE)."""
    return "".join(f"\\{char}" if char in _REGEX_SPECIAL else char for char in text)


@dataclass(frozen=True, slots=True)
class PartyProvision:
    """One party's result: its outcome, what changed, its credentials file, why reported."""

    party: str
    outcome: Outcome
    credentials: Path
    changes: tuple[str, ...] = ()
    problem: str = ""

    def __str__(self) -> str:
        said = "; ".join(filter(None, [self.problem, *self.changes])) or "as it should be"
        return f"{self.outcome.value:<9} {self.party}: {said}"


@dataclass(frozen=True, slots=True)
class ProvisionReport:
    """What provisioning found and did, per AMQP party, by party id."""

    vhost: str
    parties: tuple[PartyProvision, ...]

    def of(self, party: str) -> PartyProvision:
        for entry in self.parties:
            if entry.party == party:
                return entry
        raise KeyError(party)

    def with_outcome(self, outcome: Outcome) -> tuple[str, ...]:
        return tuple(entry.party for entry in self.parties if entry.outcome is outcome)

    @property
    def created(self) -> tuple[str, ...]:
        return self.with_outcome(Outcome.CREATED)

    @property
    def updated(self) -> tuple[str, ...]:
        return self.with_outcome(Outcome.UPDATED)

    @property
    def unchanged(self) -> tuple[str, ...]:
        return self.with_outcome(Outcome.UNCHANGED)

    @property
    def reported(self) -> tuple[str, ...]:
        return self.with_outcome(Outcome.REPORTED)

    def __str__(self) -> str:
        counts = ", ".join(f"{len(self.with_outcome(o))} {o.value}" for o in Outcome)
        lines = [f"broker users of the AMQP parties, vhost {self.vhost!r}: {counts}"]
        lines.extend(f"  {entry}" for entry in self.parties)
        return "\n".join(lines)


async def provision(
    contracts: Contracts,
    *,
    management_url: str,
    admin_user: str,
    admin_password: str,
    credentials_dir: Path,
    vhost: str = "/",
    broker_url: str | None = None,
    reset: bool = False,
    timeout: float = DEFAULT_TIMEOUT,
) -> ProvisionReport:
    """Create or check the broker user of every AMQP party; see the module's doc.

    `management_url` is the management API's base (`http://host:15672`);
    `admin_user` needs the administrator tag. `broker_url` is the AMQP address
    partners connect to, without user or vhost (`amqps://broker.example:5671`),
    its query (the TLS files `cafile`, `certfile`, `keyfile`) kept in every
    partner's URL; by default the management host on port 5672. `reset=True`
    gives a new password to the users whose password is not known here (and to
    no other).

    An unreachable API raises TransientError; refused admin credentials, a
    missing vhost or an unwritable credentials folder raise ConfigurationError.
    """
    partner_base = _partner_base(broker_url, management_url)
    headers = {"Authorization": _basic_auth(admin_user, admin_password)}
    async with aiohttp.ClientSession(
        headers=headers, timeout=aiohttp.ClientTimeout(total=timeout)
    ) as session:
        api = _ManagementApi(session, management_url, admin_user)
        if await api.get("vhosts", vhost) is None:
            raise ConfigurationError(f"the broker has no vhost {vhost!r}; create it first")
        entries = []
        for party in amqp_parties(contracts):
            path = credentials_dir / f"{party}{CREDENTIALS_SUFFIX}"
            if party == admin_user:
                entries.append(
                    PartyProvision(
                        party, Outcome.REPORTED, path, problem="is the admin user; not touched"
                    )
                )
                continue
            step = _PartyStep(api, party, vhost, path, partner_base)
            entries.append(await step.run(reset=reset))
    return ProvisionReport(vhost, tuple(entries))


class _PartyStep:
    """Provisioning one party: its user, its password and file, its tags and permissions."""

    def __init__(
        self, api: _ManagementApi, party: str, vhost: str, path: Path, partner_base: URL
    ) -> None:
        self.api = api
        self.party = party
        self.vhost = vhost
        self.path = path
        self.partner_base = partner_base
        self.changes: list[str] = []

    async def run(self, *, reset: bool) -> PartyProvision:
        user = await self.api.get("users", self.party)
        try:
            stored = _stored_password(self.path, self.party)
            file_problem = (
                "" if stored is not None else f"its credentials file {self.path} is missing"
            )
        except ValueError as exc:
            stored, file_problem = None, f"its credentials file {self.path} is unusable: {exc}"

        problem = ""
        if user is None:
            if stored is None:  # missing, or unusable: no user, so nothing in it to keep
                password = self._new_credentials()
                replaced = " (replacing an unusable one)" if "unusable" in file_problem else ""
                self.changes.append(f"credentials written to {self.path}{replaced}")
            else:
                password = stored
                self.changes.append(f"password taken from {self.path}")
            await self.api.put({"password": password, "tags": ""}, "users", self.party)
            self.changes.insert(0, "user created")
        else:
            unknown = file_problem or self._mismatch(stored, user)
            if unknown and reset:
                password = self._new_credentials()  # the file first: never a password lost
                await self.api.put({"password": password, "tags": ""}, "users", self.party)
                self.changes.append(f"password reset ({unknown}); credentials in {self.path}")
            else:
                if unknown:
                    problem = (
                        f"the user exists, but {unknown}: its password is not known here; "
                        "provision with reset to give it a new one"
                    )
                else:
                    self._tighten_file_mode()
                await self._clear_tags(user)
        await self._set_permissions()

        if problem:
            outcome = Outcome.REPORTED
        elif user is None:
            outcome = Outcome.CREATED
        else:
            outcome = Outcome.UPDATED if self.changes else Outcome.UNCHANGED
        return PartyProvision(self.party, outcome, self.path, tuple(self.changes), problem)

    def _new_credentials(self) -> str:
        """A new password, written to the party's credentials file (replacing it)."""
        password = secrets.token_urlsafe(32)
        url = _partner_url(self.partner_base, self.party, password, self.vhost)
        _write_private(self.path, _credentials_text(self.party, password, url))
        return password

    def _mismatch(self, stored: str | None, user: Mapping[str, Any]) -> str:
        if stored is None:
            return ""
        matches = _password_matches(
            stored, str(user.get("password_hash", "")), str(user.get("hashing_algorithm", ""))
        )
        if matches is False:
            return f"the broker does not accept the password in {self.path}"
        return ""  # matches, or a hashing algorithm this code cannot check: trust the file

    async def _clear_tags(self, user: Mapping[str, Any]) -> None:
        tags = _tags(user.get("tags"))
        if not tags:
            return
        body = {
            "password_hash": user.get("password_hash", ""),
            "hashing_algorithm": user.get("hashing_algorithm", ""),
            "tags": "",
        }
        await self.api.put(body, "users", self.party)
        self.changes.append(f"tags removed ({', '.join(tags)})")

    async def _set_permissions(self) -> None:
        wanted = partner_permissions(self.party)
        current = await self.api.get("permissions", self.vhost, self.party)
        if current is not None and all(
            current.get(key) == value for key, value in wanted.as_body().items()
        ):
            return
        await self.api.put(wanted.as_body(), "permissions", self.vhost, self.party)
        if current is None:
            self.changes.append("permissions set")
        else:
            was = ", ".join(f"{key} {current.get(key)!r}" for key in ("configure", "write", "read"))
            self.changes.append(f"permissions set back (were {was})")

    def _tighten_file_mode(self) -> None:
        try:
            mode = stat.S_IMODE(self.path.stat().st_mode)
            if mode != CREDENTIALS_MODE:
                self.path.chmod(CREDENTIALS_MODE)
                self.changes.append(f"credentials file mode {mode:o} set to {CREDENTIALS_MODE:o}")
        except OSError as exc:
            raise ConfigurationError(f"cannot protect {self.path}: {exc.strerror}") from exc


class _ManagementApi:
    """The few calls of RabbitMQ's management HTTP API that provisioning needs."""

    def __init__(self, session: aiohttp.ClientSession, base_url: str, admin_user: str) -> None:
        self._session = session
        self._base = base_url.rstrip("/")
        self._admin = admin_user

    async def get(self, *segments: str) -> Any | None:
        """The resource's JSON, or None when the API says 404."""
        return await self._call("GET", segments, None)

    async def put(self, body: Mapping[str, str], *segments: str) -> None:
        await self._call("PUT", segments, body)

    async def _call(
        self, method: str, segments: tuple[str, ...], body: Mapping[str, str] | None
    ) -> Any | None:
        path = "/".join(quote(segment, safe="") for segment in segments)
        url = URL(f"{self._base}/api/{path}", encoded=True)
        doing = f"{method} {self._base}/api/{path}"
        try:
            async with self._session.request(method, url, json=body) as response:
                if method == "GET" and response.status == 404:
                    return None
                if response.status >= 400:
                    raise self._refused(doing, response.status, await response.text())
                if method == "GET":
                    return await response.json()
                return None
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise TransientError(f"{doing}: the management API is unreachable: {exc}") from exc

    def _refused(self, doing: str, status: int, text: str) -> Exception:
        if status == 401:
            return ConfigurationError(f"{doing}: the management API refused user {self._admin!r}")
        if status == 403:
            return ConfigurationError(
                f"{doing}: user {self._admin!r} may not do this (needs the administrator tag)"
            )
        if status >= 500:
            return TransientError(f"{doing}: management API error {status}: {text[:200]}")
        return ConfigurationError(f"{doing}: management API refused ({status}): {text[:200]}")


def _partner_base(broker_url: str | None, management_url: str) -> URL:
    """The partners' AMQP address (scheme, host, port): `broker_url`, or the management host."""
    try:
        management = URL(management_url)
        base = URL(broker_url) if broker_url else None
    except (TypeError, ValueError) as exc:
        raise ConfigurationError(f"not a URL: {exc}") from exc
    if management.scheme not in {"http", "https"} or not management.host:
        raise ConfigurationError(f"management URL {management_url!r} is not http(s)://host:port")
    if base is None:
        return URL.build(scheme="amqp", host=management.host, port=DEFAULT_AMQP_PORT)
    if base.scheme not in {"amqp", "amqps"} or not base.host:
        raise ConfigurationError(f"broker URL {broker_url!r} is not amqp(s)://host[:port]")
    tls_files = sorted(TLS_QUERY_KEYS.intersection(base.query))
    if tls_files and base.scheme != "amqps":
        raise ConfigurationError(
            f"the broker URL names {', '.join(tls_files)} but is not amqps://: "
            "the partners would connect without TLS"
        )
    return URL.build(scheme=base.scheme, host=base.host, port=base.explicit_port, query=base.query)


def _partner_url(base: URL, party: str, password: str, vhost: str) -> str:
    """The AMQP URI a partner connects with: its user, its password, the vhost (%-encoded),
    and the broker URL's query."""
    with_user = URL.build(
        scheme=base.scheme,
        user=party,
        password=password,
        host=base.host or "",
        port=base.explicit_port,
    )
    query = f"?{base.raw_query_string}" if base.raw_query_string else ""
    return f"{str(with_user).rstrip('/')}/{quote(vhost, safe='')}{query}"


def _credentials_text(party: str, password: str, url: str) -> str:
    return (
        f"# RabbitMQ credentials of party {party} for the handover gateway of\n"
        "# Veilig Thuis Gelderland-Zuid. Secret: give this file to the party's operator only.\n"
        f"# Publish to exchange {IN_EXCHANGE} with user_id = {party}, message_id = the envelope\n"
        "# id, type = the envelope type, content_type application/json, persistent;\n"
        f"# consume from queue {inbox_queue(party)}.\n"
        f"{URL_KEY}={url}\n"
        f"{USER_KEY}={party}\n"
        f"{PASSWORD_KEY}={password}\n"
    )


def _stored_password(path: Path, party: str) -> str | None:
    """The password in a party's credentials file; None without a file, ValueError if unusable."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(str(exc)) from exc
    values = dict(
        line.split("=", 1)
        for line in text.splitlines()
        if "=" in line and not line.lstrip().startswith("#")
    )
    if values.get(USER_KEY) != party:
        raise ValueError(f"{USER_KEY} is not {party}")
    password = values.get(PASSWORD_KEY, "")
    if not password:
        raise ValueError(f"no {PASSWORD_KEY}")
    return password


def _write_private(path: Path, text: str) -> None:
    """Write a file readable by its owner only, whole or not at all."""
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, CREDENTIALS_MODE)
        with os.fdopen(descriptor, "w", encoding="utf-8") as stream:
            os.fchmod(stream.fileno(), CREDENTIALS_MODE)
            stream.write(text)
            stream.flush()
            os.fsync(stream.fileno())
        temporary.replace(path)
    except OSError as exc:
        temporary.unlink(missing_ok=True)
        raise ConfigurationError(f"cannot write credentials file {path}: {exc.strerror}") from exc


def _password_matches(password: str, password_hash: str, algorithm: str) -> bool | None:
    """Does the broker's salted hash match? None when the algorithm is not one checked here.

    RabbitMQ's internal hash: base64(salt[4] + H(salt[4] + UTF-8 password)).
    """
    digest = _HASHES.get(algorithm)
    if digest is None:
        return None
    try:
        raw = base64.b64decode(password_hash, validate=True)
    except ValueError:
        return None
    if len(raw) <= _SALT_BYTES:
        return False  # no password at all
    salt, expected = raw[:_SALT_BYTES], raw[_SALT_BYTES:]
    actual: bytes = digest(salt + password.encode("utf-8")).digest()
    return hmac.compare_digest(actual, expected)


def _tags(value: object) -> list[str]:
    """A user's tags: a list in RabbitMQ 3.9+, a comma-separated string before."""
    if isinstance(value, str):
        return [tag for tag in value.split(",") if tag.strip()]
    if isinstance(value, list):
        return [str(tag) for tag in value if str(tag).strip()]
    return []


def _basic_auth(user: str, password: str) -> str:
    token = base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
    return f"Basic {token}"
