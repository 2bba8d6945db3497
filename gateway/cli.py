"""The `vt-gateway` command.

Exit codes: 0 done or valid; 1 the input was checked and refused (rejected
message, invalid file, contract problems); 2 the command could not run (usage,
missing file, broken configuration).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import secrets
import shutil
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TextIO

from adapters.crypto.keyfiles import (
    add_public_key,
    key_path,
    public_key_entry,
    read_private_key,
    write_private_key,
)
from gateway.bootstrap import DEFAULT_RECEIVER, Core, Paths, load_core
from gateway.contract_files import check_contracts, load_contracts
from gateway.domain.contracts import PublicKey, Transport
from gateway.domain.envelope import Envelope, parse_timestamp
from gateway.domain.errors import ConfigurationError, GatewayError
from gateway.domain.signatures import SigningKey, sign
from gateway.resources import data_dir
from gateway.service.pipeline import Accepted, verify_message
from gateway.settings import load_settings
from gateway.vectors import VECTORS_FILE, generate, render

EXIT_OK = 0
EXIT_REFUSED = 1
EXIT_CANNOT_RUN = 2

DEV_CONTRACTS = Path("var/contracts")
DEV_KEYS = Path("var/keys")
DEV_KEY_LIFETIME = timedelta(days=365)
_KID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")  # as contract.schema.json

Command = Callable[[argparse.Namespace, TextIO], int]


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    command: Command = args.command
    try:
        return command(args, sys.stdout)
    except (GatewayError, OSError, ValueError) as exc:  # ValueError: a moment that is none
        print(f"vt-gateway: {exc}", file=sys.stderr)
        return EXIT_CANNOT_RUN


# --- keys ---------------------------------------------------------------------


def keys_generate(args: argparse.Namespace, out: TextIO) -> int:
    """A new Ed25519 key for PARTY: private half to the keys folder, public half to its contract."""
    contracts_dir: Path = args.contracts
    contract_file = contracts_dir / f"{args.party}.toml"
    contracts = load_contracts(contracts_dir)
    contract = contracts.get(args.party)
    if contract is None:
        raise ConfigurationError(f"no contract for '{args.party}' in {contracts_dir}")
    if contract.transport is Transport.EMAIL:
        raise ConfigurationError(
            f"'{args.party}' uses the e-mail transport and has no keys of its own: "
            f"its messages are signed by '{contract.signed_by}'"
        )
    not_before = _now_or(args.not_before)
    not_after = parse_timestamp(args.not_after) if args.not_after else None
    if not_after is not None and not_after <= not_before:
        raise ConfigurationError("--not-after must lie after --not-before")
    kid = args.kid or f"{args.party}-{not_before:%Y%m%d%H%M%S}"
    if _KID.fullmatch(kid) is None:
        raise ConfigurationError(f"kid '{kid}' is not letters, digits, '.', '_', '-' (64 at most)")
    if contract.key(kid) is not None:
        raise ConfigurationError(f"'{args.party}' already has a key '{kid}'")
    key = SigningKey.generate(kid)
    path = key_path(args.keys, args.party, kid)
    write_private_key(path, key)
    add_public_key(contract_file, public_key_entry(key, not_before=not_before, not_after=not_after))
    print(
        f"{args.party}: key {kid}; private key {path}; public key added to {contract_file}",
        file=out,
    )
    return EXIT_OK


KEY_EXPIRY_WARNING = timedelta(days=60)
"""Issue 6 and the key runbook: a key that ends within 60 days is due for rotation."""


def keys_list(args: argparse.Namespace, out: TextIO) -> int:
    """Every party's keys with their windows: which verify now, which end soon, which ended.

    Exit 1 when a signing party has no key valid now, or only keys that end within
    60 days: the operator must rotate (docs/keys.md).
    """
    contracts = load_contracts(args.contracts)
    now = _now_or(args.at)
    attention = False
    for contract in sorted(contracts, key=lambda c: c.party):
        if contract.transport is Transport.EMAIL:
            continue  # signed by the bridge, which has keys of its own
        for key in sorted(contract.keys, key=lambda k: k.not_before):
            end = _iso(key.not_after) if key.not_after else "no end"
            print(
                f"{contract.party}  {key.kid}  {_key_state(key, now)}  "
                f"from {_iso(key.not_before)}  until {end}",
                file=out,
            )
        lasting = any(
            _key_state(key, now) in ("valid", "future")
            and (key.not_after is None or key.not_after - now > KEY_EXPIRY_WARNING)
            for key in contract.keys
        )
        if not contract.keys:
            attention = True
            print(f"{contract.party}: no keys (vt-gateway keys generate)", file=out)
        elif not lasting:
            attention = True
            print(f"{contract.party}: no key valid beyond 60 days: rotate (docs/keys.md)", file=out)
    return EXIT_REFUSED if attention else EXIT_OK


def _key_state(key: PublicKey, now: datetime) -> str:
    if key.revoked:
        return "revoked"
    if now < key.not_before:
        return "future"
    if key.not_after is not None and now >= key.not_after:
        return "ended"
    if key.not_after is not None and key.not_after - now <= KEY_EXPIRY_WARNING:
        return "ends-soon"
    return "valid"


def dev_init(args: argparse.Namespace, out: TextIO) -> int:
    """Development setup: a copy of the contracts and a key for every party that signs."""
    target: Path = args.contracts
    if not target.exists():
        shutil.copytree(
            data_dir("contracts"), target, ignore=shutil.ignore_patterns("*.json", "*.md")
        )
        print(f"contracts copied to {target}", file=out)
    contracts = load_contracts(target)
    _dev_api_token(args.tokens, out)
    _dev_dashboard(args.staff, args.session_secret, out)
    for contract in contracts:
        if contract.transport is Transport.EMAIL or contract.keys:
            continue
        keys_args = argparse.Namespace(
            party=contract.party,
            contracts=target,
            keys=args.keys,
            kid=None,
            not_before=None,
            not_after=_iso(datetime.now(UTC) + DEV_KEY_LIFETIME),
        )
        keys_generate(keys_args, out)
    return EXIT_OK


# --- the service --------------------------------------------------------------


def run_command(args: argparse.Namespace, out: TextIO) -> int:
    """Run the gateway until SIGTERM: consumer, relay, timers and API in one process."""
    from gateway.logs import configure_logging  # noqa: PLC0415 - only `run` needs the I/O stack
    from gateway.runtime import run  # noqa: PLC0415

    configure_logging()
    asyncio.run(run(load_settings(args.config)))
    return EXIT_OK


def provision_command(args: argparse.Namespace, out: TextIO) -> int:
    """Create each AMQP partner's broker user with the permissions of PROTOCOL.md."""
    from adapters.amqp.provision import provision  # noqa: PLC0415

    settings = load_settings(args.config)
    contracts = load_contracts(settings.contracts_dir)
    password = os.environ.get("VTGW_BROKER_ADMIN_PASSWORD", "")
    report = asyncio.run(
        provision(
            contracts,
            management_url=args.management_url,
            admin_user=args.admin_user,
            admin_password=password,
            credentials_dir=args.credentials,
            vhost=args.vhost,
            broker_url=args.broker_url,
        )
    )
    print(report, file=out)
    return EXIT_OK


def _dev_api_token(tokens_file: Path, out: TextIO) -> None:
    """A token for a development case system, its hash in the tokens file, itself beside it."""
    from adapters.http.auth import hash_token, new_token  # noqa: PLC0415

    if tokens_file.exists():
        return
    token = new_token()
    tokens_file.parent.mkdir(parents=True, exist_ok=True)
    tokens_file.write_text(f'dev-case-system = "{hash_token(token)}"\n', encoding="utf-8")
    token_file = tokens_file.with_name("api-token.txt")
    fd = os.open(token_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(token + "\n")
    print(f"API token for 'dev-case-system' in {token_file}", file=out)


def _dev_dashboard(staff_file: Path, secret_file: Path, out: TextIO) -> None:
    """A development admin for the dashboard (its password beside the staff file, 0600)
    and a session secret; each only when missing."""
    from adapters.dashboard import hash_password  # noqa: PLC0415 - argon2 only here

    if not secret_file.exists():
        secret_file.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(secret_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_urlsafe(48) + "\n")
    if staff_file.exists():
        return
    password = secrets.token_urlsafe(18)
    staff_file.parent.mkdir(parents=True, exist_ok=True)
    staff_file.write_text(
        "# Development staff of the dashboard (docs/dashboard.md). Not for production.\n"
        '[[staff]]\nusername = "beheerder"\ndisplay_name = "Beheerder (ontwikkeling)"\n'
        f'role = "admin"\npassword_hash = "{hash_password(password)}"\n',
        encoding="utf-8",
    )
    password_file = staff_file.with_name("dashboard-password.txt")
    fd = os.open(password_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(password + "\n")
    print(f"dashboard user 'beheerder' (admin), password in {password_file}", file=out)


# --- the responsibility ledger -------------------------------------------------

LEDGER_PAGE = 1000


def ledger_verify(args: argparse.Namespace, out: TextIO) -> int:
    """Check the whole hash chain of the ledger; name the first broken entry."""
    broken, count = asyncio.run(_verify_ledger(load_settings(args.config).store_dsn))
    if broken is not None:
        print(f"ledger: broken at entry {broken} ({count} entries read)", file=out)
        return EXIT_REFUSED
    print(f"ledger: {count} entries, the chain is whole", file=out)
    return EXIT_OK


async def _verify_ledger(dsn: str) -> tuple[int | None, int]:
    from adapters.store.sql import open_store  # noqa: PLC0415 - only this command needs it
    from gateway.domain.ledger import verify_chain  # noqa: PLC0415

    store = await open_store(dsn)
    try:
        count, after = 0, None
        while True:
            async with store.transaction() as uow:
                page = await uow.ledger.entries(
                    after=after.sequence if after else 0, limit=LEDGER_PAGE
                )
            if not page:
                return None, count
            broken = verify_chain(page, after=after)
            count += len(page)
            if broken is not None:
                return broken, count
            after = page[-1]
    finally:
        await store.close()


def ledger_holder(args: argparse.Namespace, out: TextIO) -> int:
    """Who holds a case now, or at --at."""
    from gateway.service.views import case_view  # noqa: PLC0415

    async def view() -> dict[str, Any] | None:
        from adapters.store.sql import open_store  # noqa: PLC0415

        store = await open_store(load_settings(args.config).store_dsn)
        try:
            at = parse_timestamp(args.at) if args.at else None
            return await case_view(store, args.case, at)
        finally:
            await store.close()

    found = asyncio.run(view())
    if found is None:
        print(f"{args.case}: unknown to the ledger", file=out)
        return EXIT_REFUSED
    moment = found["at"] or "now"
    print(
        f"{args.case} at {moment}: held by {found['holder']}, regie {found['regievoerder']}",
        file=out,
    )
    return EXIT_OK


def ledger_overdue(args: argparse.Namespace, out: TextIO) -> int:
    """The handovers VT still holds past their confirmation deadline, earliest first."""
    from adapters.store.sql import open_store  # noqa: PLC0415
    from gateway.domain.calendar import WorkingDayCalendar  # noqa: PLC0415
    from gateway.service.views import held_past_deadline, overdue_terms  # noqa: PLC0415

    settings = load_settings(args.config)
    calendar = WorkingDayCalendar.for_region(load_core(Paths.defaults()).region)

    async def late() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        store = await open_store(settings.store_dsn)
        try:
            now = datetime.now(UTC)
            return (
                await held_past_deadline(store, calendar, now, settings.party, limit=args.limit),
                await overdue_terms(store),
            )
        finally:
            await store.close()

    handovers, terms = asyncio.run(late())
    for item in handovers:
        print(
            f"{item['case_ref']}  {item['recipient']}  moment {item['moment']}  "
            f"{item['state']}  due {item['due']}",
            file=out,
        )
    print(f"{len(handovers)} handover(s) past their deadline, VT still holding", file=out)
    for term in terms:
        print(
            f"{term['case_ref']}  {term['rule']}  overdue since {term['overdue_since']}", file=out
        )
    print(f"{len(terms)} term(s) of VT's own ended before it decided what follows", file=out)
    return EXIT_OK


def report_command(args: argparse.Namespace, out: TextIO) -> int:
    """The quarterly report per municipality (§7.2), as CSV and JSON files."""
    from adapters.store.sql import open_store  # noqa: PLC0415
    from gateway.domain.calendar import WorkingDayCalendar  # noqa: PLC0415
    from gateway.domain.report import Quarter  # noqa: PLC0415
    from gateway.service.reporting import as_csv, report  # noqa: PLC0415

    quarter = Quarter.parse(args.quarter)
    settings = load_settings(args.config)
    region = load_core(Paths.defaults()).region

    async def made() -> dict[str, Any]:
        store = await open_store(settings.store_dsn)
        try:
            return await report(store, region, WorkingDayCalendar.for_region(region), quarter)
        finally:
            await store.close()

    document = asyncio.run(made())
    args.out.mkdir(parents=True, exist_ok=True)
    csv_file = args.out / f"report-{quarter}.csv"
    json_file = args.out / f"report-{quarter}.json"
    csv_file.write_text(as_csv(document), encoding="utf-8")
    json_file.write_text(json.dumps(document, ensure_ascii=False, indent=2) + "\n", "utf-8")
    print(f"report {quarter}: {csv_file} and {json_file}", file=out)
    return EXIT_OK


def retention_command(args: argparse.Namespace, out: TextIO) -> int:
    """The retention purge's audit (§5.1): what was removed, when, by which rule; newest first."""
    from adapters.store.sql import open_store  # noqa: PLC0415

    settings = load_settings(args.config)

    async def purged() -> list[Any]:
        store = await open_store(settings.store_dsn)
        try:
            async with store.transaction() as uow:
                return list(await uow.retention.recent(args.limit))
        finally:
            await store.close()

    rows = asyncio.run(purged())
    for p in rows:
        print(
            f"{_iso(p.purged_at)}  {p.type}  {p.sender}->{p.recipient}  {p.message_id}  "
            f"case {p.case_ref or '-'}  kept until {p.retained_until.isoformat()}  "
            f"digest {p.digest}",
            file=out,
        )
    print(f"{len(rows)} purged message(s) shown", file=out)
    return EXIT_OK


# --- messages -----------------------------------------------------------------


def sign_command(args: argparse.Namespace, out: TextIO) -> int:
    """Sign an envelope (JSON without `signature`) with a private key file."""
    core = _core(args)
    obj = _read_json(args.file)
    obj.pop("signature", None)
    problem = core.validator.first_problem({**obj, "signature": _PLACEHOLDER_SIGNATURE})
    if problem is not None:
        print(f"SCHEMA_INVALID {problem.pointer or '/'}: {problem.message}", file=out)
        return EXIT_REFUSED
    key = read_private_key(args.key, args.kid)
    signed = sign(Envelope.from_json(obj), key)
    json.dump(signed.to_json(), out, ensure_ascii=False, indent=2)
    out.write("\n")
    return EXIT_OK


def verify_command(args: argparse.Namespace, out: TextIO) -> int:
    """The whole verification pipeline on a message file, as the gateway would run it."""
    core = _core(args)
    raw = args.file.read_bytes()
    identity = args.transport_identity or _sender_of(raw)
    now = parse_timestamp(args.now) if args.now else datetime.now(UTC)
    outcome = verify_message(
        raw, transport_identity=identity, now=now, verifier=core.verifier(args.receiver)
    )
    if isinstance(outcome, Accepted):
        print(f"ACCEPTED {outcome.envelope.type} {outcome.envelope.id} {outcome.digest}", file=out)
        return EXIT_OK
    rejection = outcome.rejection
    print(f"{rejection.code.value} {rejection.pointer or '/'}: {rejection.detail}", file=out)
    return EXIT_REFUSED


def validate_command(args: argparse.Namespace, out: TextIO) -> int:
    """Schema validation only, listing every problem (the reference validator)."""
    core = _core(args)
    problems = core.reference.problems(_read_json(args.file))
    for problem in problems:
        print(f"SCHEMA_INVALID {problem.pointer or '/'}: {problem.message}", file=out)
    if problems:
        return EXIT_REFUSED
    print("valid", file=out)
    return EXIT_OK


# --- contracts ----------------------------------------------------------------


def contracts_check(args: argparse.Namespace, out: TextIO) -> int:
    """Every problem of every contract file, with file and field."""
    problems = check_contracts(args.directory)
    for problem in problems:
        # Problems of the set as a whole (a gemeente without a lokaal team) name no file.
        where = problem.file or "contracts"
        print(f"{where}: {problem.field or '/'}: {problem.message}", file=out)
    if problems:
        print(f"{len(problems)} problem(s)", file=out)
        return EXIT_REFUSED
    print(f"contracts in {args.directory}: ok", file=out)
    return EXIT_OK


# --- test vectors -------------------------------------------------------------


def vectors_command(args: argparse.Namespace, out: TextIO) -> int:
    """Write the test vectors file, or check that the committed one is current."""
    core = load_core(Paths.defaults())
    text = render(generate(core.contracts, data_dir("schemas") / "examples"))
    target: Path = args.file
    if args.action == "check":
        if not target.exists():
            raise ConfigurationError(f"{target} does not exist")
        if target.read_text(encoding="utf-8") != text:
            print(f"{target} is not what `vt-gateway vectors generate` makes", file=out)
            return EXIT_REFUSED
        print(f"{target}: current", file=out)
        return EXIT_OK
    target.write_text(text, encoding="utf-8")
    print(f"test vectors written to {target}", file=out)
    return EXIT_OK


# --- plumbing -----------------------------------------------------------------

_PLACEHOLDER_SIGNATURE = {"alg": "Ed25519", "kid": "unsigned", "value": "A" * 86}


def _core(args: argparse.Namespace) -> Core:
    return load_core(Paths.defaults(contracts=args.contracts))


def _read_json(path: Path) -> dict[str, Any]:
    try:
        value = json.loads(path.read_bytes())
    except ValueError as exc:
        raise ConfigurationError(f"{path} is not JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise ConfigurationError(f"{path} is not a JSON object")
    return value


def _sender_of(raw: bytes) -> str:
    try:
        sender = json.loads(raw).get("sender")
    except (ValueError, AttributeError):
        sender = None
    return sender if isinstance(sender, str) else ""


def _now_or(text: str | None) -> datetime:
    return parse_timestamp(text) if text else datetime.now(UTC).replace(microsecond=0)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def _add_keys_commands(commands: Any) -> None:
    keys = commands.add_parser("keys", help="signing keys").add_subparsers(
        required=True, metavar="ACTION"
    )
    generate = keys.add_parser("generate", help="generate a key for PARTY")
    generate.add_argument("party")
    generate.add_argument("--contracts", type=Path, default=DEV_CONTRACTS)
    generate.add_argument("--keys", type=Path, default=DEV_KEYS)
    generate.add_argument("--kid")
    generate.add_argument("--not-before", help="RFC 3339 UTC; default now")
    generate.add_argument("--not-after", help="RFC 3339 UTC; default none")
    generate.set_defaults(command=keys_generate)
    listing = keys.add_parser("list", help="every party's keys and what expires when")
    listing.add_argument("--contracts", type=Path, default=DEV_CONTRACTS)
    listing.add_argument("--at", help="RFC 3339 UTC moment; default now")
    listing.set_defaults(command=keys_list)


def _add_report_command(commands: Any) -> None:
    quarterly = commands.add_parser("report", help="the quarterly report per municipality")
    quarterly.add_argument("--quarter", required=True, help="like 2026Q3")
    quarterly.add_argument("--out", type=Path, default=Path("."), help="folder for CSV and JSON")
    quarterly.add_argument("--config", type=Path, default=Path("config/gateway.toml"))
    quarterly.set_defaults(command=report_command)


def _add_retention_command(commands: Any) -> None:
    purges = commands.add_parser(
        "retention", help="what the 2-year retention purge removed (§5.1)"
    ).add_subparsers(required=True, metavar="ACTION")
    log = purges.add_parser("log", help="the purge's audit entries, newest first")
    log.add_argument("--limit", type=int, default=100)
    log.add_argument("--config", type=Path, default=Path("config/gateway.toml"))
    log.set_defaults(command=retention_command)


def _add_ledger_commands(commands: Any) -> None:
    ledger = commands.add_parser("ledger", help="the responsibility ledger").add_subparsers(
        required=True, metavar="ACTION"
    )
    verify_ledger = ledger.add_parser("verify", help="check the whole hash chain")
    verify_ledger.add_argument("--config", type=Path, default=Path("config/gateway.toml"))
    verify_ledger.set_defaults(command=ledger_verify)
    holder = ledger.add_parser("holder", help="who holds a case now or at a moment")
    holder.add_argument("case")
    holder.add_argument("--at", help="RFC 3339 UTC moment; default now")
    holder.add_argument("--config", type=Path, default=Path("config/gateway.toml"))
    holder.set_defaults(command=ledger_holder)
    late = ledger.add_parser("overdue", help="cases VT holds past their confirmation deadline")
    late.add_argument("--limit", type=int, default=1000, help="at most this many handovers")
    late.add_argument("--config", type=Path, default=Path("config/gateway.toml"))
    late.set_defaults(command=ledger_overdue)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vt-gateway", description="Handover messaging gateway of Veilig Thuis Gelderland-Zuid"
    )
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    _add_keys_commands(commands)

    dev = commands.add_parser("dev", help="development setup").add_subparsers(
        required=True, metavar="ACTION"
    )
    init = dev.add_parser("init", help="copy the contracts and generate development keys")
    init.add_argument("--contracts", type=Path, default=DEV_CONTRACTS)
    init.add_argument("--keys", type=Path, default=DEV_KEYS)
    init.add_argument("--tokens", type=Path, default=Path("var/api-tokens.toml"))
    init.add_argument("--staff", type=Path, default=Path("var/dashboard-staff.toml"))
    init.add_argument("--session-secret", type=Path, default=Path("var/dashboard-secret"))
    init.set_defaults(command=dev_init)

    for name, function, text in (
        ("sign", sign_command, "sign an envelope file"),
        ("verify", verify_command, "run the verification pipeline on a message file"),
        ("validate", validate_command, "validate a message file against the schemas"),
    ):
        sub = commands.add_parser(name, help=text)
        sub.add_argument("file", type=Path)
        sub.add_argument("--contracts", type=Path, help="contracts folder (default: committed)")
        sub.set_defaults(command=function)
        if name == "sign":
            sub.add_argument("--key", type=Path, required=True, help="private key PEM file")
            sub.add_argument("--kid", help="key id (default: the key file's name)")
        if name == "verify":
            sub.add_argument("--as", dest="transport_identity", help="transport identity")
            sub.add_argument("--receiver", default=DEFAULT_RECEIVER)
            sub.add_argument("--now", help="the verifier's clock, RFC 3339 UTC")

    run = commands.add_parser("run", help="run the gateway (consumer, relay, timers, API)")
    run.add_argument("--config", type=Path, default=Path("config/gateway.toml"))
    run.set_defaults(command=run_command)

    prov = commands.add_parser("provision", help="create the partners' broker users")
    prov.add_argument("--config", type=Path, default=Path("config/gateway.toml"))
    prov.add_argument("--management-url", default="http://127.0.0.1:15672")
    prov.add_argument("--admin-user", default="guest", help="password: $VTGW_BROKER_ADMIN_PASSWORD")
    prov.add_argument(
        "--credentials", type=Path, required=True, help="folder for the partners' credentials"
    )
    prov.add_argument(
        "--broker-url",
        help="the AMQP address partners connect to, without user or vhost; its query (the"
        " TLS files as they are on the partner's machine) is kept: amqps://mq:5671?cafile=..."
        "&certfile=...&keyfile=... (default: the management host, port 5672)",
    )
    prov.add_argument("--vhost", default="/", help="the vhost of the gateway's topology")
    prov.set_defaults(command=provision_command)

    _add_ledger_commands(commands)

    _add_report_command(commands)
    _add_retention_command(commands)

    contracts = commands.add_parser("contracts", help="partner contracts").add_subparsers(
        required=True, metavar="ACTION"
    )
    check = contracts.add_parser("check", help="check every contract file")
    check.add_argument("directory", type=Path, nargs="?", default=data_dir("contracts"))
    check.set_defaults(command=contracts_check)
    vectors = commands.add_parser("vectors", help="test vectors for partner implementations")
    vectors.add_argument("action", choices=["generate", "check"])
    vectors.add_argument("--file", type=Path, default=data_dir("contracts") / VECTORS_FILE)
    vectors.set_defaults(command=vectors_command)
    return parser


if __name__ == "__main__":
    raise SystemExit(main())
