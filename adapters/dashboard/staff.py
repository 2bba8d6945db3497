"""VT staff accounts: who may sign in to the dashboard, with which role.

Accounts live in a TOML file (its path is `[dashboard] staff_file`), one
table per member:

    [[staff]]
    username = "coordinator1"
    display_name = "Coördinator 1"
    role = "coordinator"            # viewer | coordinator | admin
    password_hash = "$argon2id$v=19$m=65536,t=3,p=4$..."

Passwords are hashed with argon2id (argon2-cffi); the file holds only the
hashes. Make one with

    .venv/bin/python -c "from adapters.dashboard.staff import hash_password; \
print(hash_password(input('password: ')))"
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from gateway.domain.errors import ConfigurationError

_HASHER = PasswordHasher()  # argon2id with the library's current recommended parameters

# Verified against when the username is unknown, so that a guess of a name costs
# as much time as a guess of a password.
_DUMMY_HASH = _HASHER.hash("no such account")


class Role(StrEnum):
    """What a member may do: read (viewer), act on cases (coordinator), and more (admin)."""

    VIEWER = "viewer"
    COORDINATOR = "coordinator"
    ADMIN = "admin"

    @property
    def may_act(self) -> bool:
        """Record an escalation outcome, withdraw a handover."""
        return self in (Role.COORDINATOR, Role.ADMIN)

    @property
    def may_audit(self) -> bool:
        """Search the access log."""
        return self is Role.ADMIN


@dataclass(frozen=True, slots=True)
class StaffMember:
    username: str
    display_name: str
    role: Role
    password_hash: str


def hash_password(password: str) -> str:
    """The argon2id hash of a password, for the staff file."""
    if not password:
        raise ValueError("an empty password is no password")
    return _HASHER.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    """Whether the password matches the hash; False for a malformed hash too."""
    try:
        return _HASHER.verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


class StaffDirectory:
    """The staff accounts, by username."""

    def __init__(self, members: Mapping[str, StaffMember]) -> None:
        self._members = dict(members)

    def __iter__(self) -> Iterator[StaffMember]:
        return iter(self._members.values())

    def __len__(self) -> int:
        return len(self._members)

    def get(self, username: str) -> StaffMember | None:
        return self._members.get(username)

    def authenticate(self, username: str, password: str) -> StaffMember | None:
        """The member when the password is theirs; None otherwise (in about the same time)."""
        member = self._members.get(username)
        if member is None:
            verify_password(_DUMMY_HASH, password)
            return None
        return member if verify_password(member.password_hash, password) else None


def load_staff(path: Path) -> StaffDirectory:
    """Read the staff file; ConfigurationError naming the entry when one is wrong."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigurationError(f"cannot read the staff file {path}: {exc}") from exc
    members: dict[str, StaffMember] = {}
    for index, entry in enumerate(data.get("staff", [])):
        where = f"{path} [[staff]] #{index + 1}"
        try:
            member = StaffMember(
                username=str(entry["username"]),
                display_name=str(entry.get("display_name", entry["username"])),
                role=Role(str(entry["role"])),
                password_hash=str(entry["password_hash"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigurationError(f"{where}: missing or wrong value: {exc}") from exc
        if not member.username or not member.password_hash.startswith("$argon2"):
            raise ConfigurationError(f"{where}: a username and an argon2 password_hash are needed")
        if member.username in members:
            raise ConfigurationError(f"{where}: username {member.username!r} appears twice")
        members[member.username] = member
    return StaffDirectory(members)
