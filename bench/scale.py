"""Several instances on one PostgreSQL: the load of bench/throughput.py through 1, 2 and 3.

Each run starts a fresh gateway (its own database and vhost) with that many
`vt-gateway run` processes sharing the store and the broker, and plays the
partner of bench/throughput.py against it: WINDOW signed messages in flight,
each timed until its receipt is back. Printed: msg/s and latency per count of
instances, and the ratio of each to one instance (the goal: two instances at
least 1.6 times one).

`--ledger` makes every message move the responsibility ledger (regie changes
on cases handed over to the team, instead of a case the gateway never saw):
every instance then appends to the one hash chain. The changes go to
`--cases` cases in turn (400): a case's own entries are decided one
transaction at a time, the chain is taken only to link them at commit, so
`--cases 1` shows the one-case limit and more cases show the chain's.

The gateways, PostgreSQL, RabbitMQ and this load generator share the
machine's cores: on a small machine the figures say as much about the cores
as about the gateway. `--cpu-per-instance 0.25` gives each gateway process a
quarter of a core of its own, as a container with a CPU limit has (a cgroup
each; Linux, as root): the gateways are then what limits, and the figures
show how the instances share the work.

    .venv/bin/python bench/scale.py [--messages 5000] [--window 200] [--instances 1 2 3]
                                    [--rounds 1] [--ledger [--cases 400]]
                                    [--cpu-per-instance CORES]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.throughput import CASE, PARTY, Figures, through_gateway  # noqa: E402
from tests.integration.gateway_rig import GatewayRig, gateway_rig  # noqa: E402
from tests.integration.partner_side import WirePartner, notice_body  # noqa: E402

GOAL = 1.6
PERIOD_US = 100_000  # the CPU quota's period: 0.1 s


def ledger_cases(count: int) -> list[dict[str, str]]:
    """`count` synthetic cases of one municipality (the first is CASE of bench/throughput.py)."""
    first = int(CASE["ref"].rsplit("-", 1)[1])
    return [{**CASE, "ref": f"VT-2026-{first + i:06d}"} for i in range(count)]


async def hand_over_cases(rig: GatewayRig, cases: list[dict[str, str]]) -> None:
    """VT hands each case over to the team and the team confirms: its regie changes reach
    the ledger."""
    body = notice_body(PARTY)
    notices = set()
    for case in cases:
        status, created = await asyncio.to_thread(
            rig.api,
            "POST",
            "/messages",
            {"type": "overdracht.notice", "case": case, "body": body, "recipients": [PARTY]},
        )
        assert status == 201, created
        notices.add(created["messages"][0]["id"])
    async with WirePartner(PARTY, rig.credentials[PARTY], rig.signing_key(PARTY)) as team:
        confirmations = set()
        while notices:
            notice = await team.receive(timeout=120)
            if notice["id"] not in notices:
                continue
            notices.discard(notice["id"])
            confirmation = team.envelope(
                "overdracht.confirmation",
                reply_to=notice["id"],
                thread=notice["thread"],
                case=notice["case"],
            )
            await team.send(confirmation)
            confirmations.add(confirmation["id"])
        while confirmations:  # their receipts, in whatever order the instances send them
            answer = await team.receive(timeout=120)
            if answer["type"] == "receipt":
                confirmations.discard(answer.get("reply_to"))


@contextmanager
def cpu_limited(pids: list[int], cores: float) -> Iterator[None]:
    """Each process in a cgroup of its own with `cores` of CPU time (cgroup v2 `cpu.max`, or
    v1 `cpu.cfs_quota_us`); the cgroups are removed afterwards (the processes have ended)."""
    quota = int(cores * PERIOD_US)
    unified, legacy = Path("/sys/fs/cgroup"), Path("/sys/fs/cgroup/cpu")
    controllers = unified / "cgroup.controllers"
    if controllers.exists() and "cpu" in controllers.read_text().split():
        (unified / "cgroup.subtree_control").write_text("+cpu")
        base, limits = unified, {"cpu.max": f"{quota} {PERIOD_US}"}
    elif (legacy / "cpu.cfs_quota_us").exists():
        base, limits = legacy, {"cpu.cfs_period_us": str(PERIOD_US), "cpu.cfs_quota_us": str(quota)}
    else:
        raise SystemExit("--cpu-per-instance needs the cgroup cpu controller (Linux, as root)")
    groups = []
    try:
        for pid in pids:
            group = base / f"vtgw-scale-{os.getpid()}-{pid}"
            group.mkdir()
            groups.append(group)
            for name, value in limits.items():
                (group / name).write_text(value)
            (group / "cgroup.procs").write_text(str(pid))
        yield
    finally:
        for group in groups:
            group.rmdir()


def run_with(
    instances: int, count: int, window: int, *, cases: int | None, cores: float | None
) -> Figures:
    """`cases` None: one case the ledger does not know; else that many handed over first."""
    name = f"gateway, PG, {instances} instance{'s' if instances > 1 else ''}"
    if cores is not None:
        name += f" @{cores:g} core"
    with (
        tempfile.TemporaryDirectory() as folder,
        gateway_rig(Path(folder), f"scale{instances}", lease=30) as rig,
    ):
        gateways = rig.start_instances(instances)
        pids = [g.process.pid for g in gateways if g.process is not None]
        limited = cpu_limited(pids, cores) if cores is not None else nullcontext()
        with limited:
            try:
                if cases is None:
                    return asyncio.run(through_gateway(rig, count, window, name))
                handed_over = ledger_cases(cases)
                asyncio.run(hand_over_cases(rig, handed_over))
                return asyncio.run(through_gateway(rig, count, window, name, handed_over))
            finally:
                for gateway in gateways:
                    gateway.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--window", type=int, default=200)
    parser.add_argument("--instances", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--rounds", type=int, default=1, help="each count this often, in turn")
    parser.add_argument("--ledger", action="store_true", help="every message appends to the ledger")
    parser.add_argument(
        "--cases", type=int, default=400, help="with --ledger: the cases the changes go to in turn"
    )
    parser.add_argument(
        "--cpu-per-instance", type=float, metavar="CORES", help="each gateway's CPU limit"
    )
    args = parser.parse_args()
    runs: dict[int, list[Figures]] = {count: [] for count in args.instances}
    for _ in range(args.rounds):  # in turn, so that a busy spell of the machine hits all
        for count in args.instances:
            cases = args.cases if args.ledger else None
            run = run_with(
                count, args.messages, args.window, cases=cases, cores=args.cpu_per_instance
            )
            runs[count].append(run)
    case = (
        f"each moves the ledger, on {args.cases} handed-over cases in turn"
        if args.ledger
        else "a case the ledger does not know"
    )
    limit = (
        f"each gateway limited to {args.cpu_per_instance:g} core"
        if args.cpu_per_instance is not None
        else "no limit per gateway"
    )
    print(
        f"{args.messages} regie changes from {PARTY} ({case}), {args.window} in flight, "
        f"quorum queues, PostgreSQL; {os.cpu_count()} cores shared by the gateways, "
        f"the broker, PostgreSQL and this load generator; {limit}"
    )
    one = max((f.rate for f in runs.get(1, [])), default=0.0)  # the best round of one
    for rounds in runs.values():
        for each in rounds:
            print(f"{each.line()}" + (f"   x{each.rate / one:.2f} of one" if one else ""))
    if one and args.rounds > 1:
        best = {count: max(f.rate for f in rounds) for count, rounds in runs.items()}
        print("best rounds: " + ", ".join(f"{n}: x{rate / one:.2f}" for n, rate in best.items()))
    print(f"goal: two instances at least {GOAL:.1f} times one")


if __name__ == "__main__":
    main()
