"""Several instances on one PostgreSQL: the load of bench/throughput.py through 1, 2 and 3.

Each run starts a fresh gateway (its own database and vhost) with that many
`vt-gateway run` processes sharing the store and the broker, and plays the
partner of bench/throughput.py against it: WINDOW signed messages in flight,
each timed until its receipt is back. Printed: msg/s and latency per count of
instances, and the ratio of each to one instance (the goal: two instances at
least 1.6 times one).

`--ledger` makes every message move the responsibility ledger (regie changes
on a case handed over to the team, instead of a case the gateway never saw):
every instance then appends to the one hash chain.

The gateways, PostgreSQL, RabbitMQ and this load generator share the
machine's cores: on a small machine the figures say as much about the cores
as about the gateway. `--cpu-per-instance 0.25` gives each gateway process a
quarter of a core of its own, as a container with a CPU limit has (a cgroup
each; Linux, as root): the gateways are then what limits, and the figures
show how the instances share the work.

    .venv/bin/python bench/scale.py [--messages 5000] [--window 200] [--instances 1 2 3]
                                    [--rounds 1] [--ledger] [--cpu-per-instance CORES]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.throughput import CASE, PARTY, Figures, through_gateway  # noqa: E402
from tests.integration.gateway_rig import GatewayRig, gateway_rig  # noqa: E402
from tests.integration.partner_side import WirePartner, example  # noqa: E402

GOAL = 1.6
PERIOD_US = 100_000  # the CPU quota's period: 0.1 s


async def hand_over_case(rig: GatewayRig) -> None:
    """VT hands CASE over to the team and the team confirms: its regie changes reach the ledger."""
    body = example("overdracht.notice")["body"]
    in_two_weeks = (datetime.now(UTC) + timedelta(days=14)).date().isoformat()
    body["geadviseerde_termijn"] = {"uiterlijk": in_two_weeks}
    status, created = await asyncio.to_thread(
        rig.api,
        "POST",
        "/messages",
        {"type": "overdracht.notice", "case": CASE, "body": body, "recipients": [PARTY]},
    )
    assert status == 201, created
    notice_id = created["messages"][0]["id"]
    async with WirePartner(PARTY, rig.credentials[PARTY], rig.signing_key(PARTY)) as team:
        notice = await team.receive(timeout=30)
        while notice["id"] != notice_id:
            notice = await team.receive(timeout=30)
        confirmation = team.envelope(
            "overdracht.confirmation", reply_to=notice_id, thread=notice["thread"], case=CASE
        )
        await team.send(confirmation)
        await team.receive_until("receipt", reply_to=confirmation["id"], timeout=30)


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
    instances: int, count: int, window: int, *, ledger: bool, cores: float | None
) -> Figures:
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
                if ledger:
                    asyncio.run(hand_over_case(rig))
                return asyncio.run(through_gateway(rig, count, window, name))
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
        "--cpu-per-instance", type=float, metavar="CORES", help="each gateway's CPU limit"
    )
    args = parser.parse_args()
    runs: dict[int, list[Figures]] = {count: [] for count in args.instances}
    for _ in range(args.rounds):  # in turn, so that a busy spell of the machine hits all
        for count in args.instances:
            run = run_with(
                count, args.messages, args.window, ledger=args.ledger, cores=args.cpu_per_instance
            )
            runs[count].append(run)
    case = "each moves the ledger" if args.ledger else "a case the ledger does not know"
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
