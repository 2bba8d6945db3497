"""Messages per second through the whole verification pipeline, beside the bare floor.

The floor is what no verifier can avoid: `json.loads` and one Ed25519 verify
of the same messages, in the same run. The ratio pipeline / floor is the
figure to watch (goal: at least 0.5). One core, one process:

    .venv/bin/python bench/pipeline.py [--messages 5000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
import uuid
from collections.abc import Callable
from datetime import timedelta

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from gateway.bootstrap import Paths, load_core
from gateway.domain.envelope import format_timestamp
from gateway.resources import data_dir
from gateway.service.pipeline import Accepted, Verifier, verify_message
from gateway.vectors import VECTOR_NOW, load_examples, sign_object, signer_key, with_test_keys

TARGET_BYTES = 1024


def messages(count: int) -> tuple[list[bytes], str]:
    """`count` distinct signed enrichment responses of about 1 KiB each."""
    core = load_core(Paths.defaults())
    contracts = with_test_keys(core.contracts)
    example = next(
        e
        for e in load_examples(data_dir("schemas") / "examples")
        if e["type"] == "enrichment.response"
    )
    key = signer_key(contracts, example["sender"])
    sent_at = format_timestamp(VECTOR_NOW - timedelta(seconds=10))
    out = []
    for _ in range(count):
        obj = example | {"id": str(uuid.uuid4()), "sent_at": sent_at}
        out.append(json.dumps(sign_object(obj, key), ensure_ascii=False).encode())
    return out, example["sender"]


def rate(work: Callable[[bytes], object], batch: list[bytes], rounds: int) -> float:
    """Median messages per second over `rounds` passes."""
    rates = []
    for _ in range(rounds):
        start = time.perf_counter()
        for raw in batch:
            work(raw)
        rates.append(len(batch) / (time.perf_counter() - start))
    return statistics.median(rates)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()

    batch, sender = messages(args.messages)
    core = load_core(Paths.defaults())
    contracts = with_test_keys(core.contracts)
    verifier = Verifier(contracts, core.validator, "vt-gz")
    signer = contracts.signer_of(sender)
    assert signer is not None
    public = Ed25519PublicKey.from_public_bytes(signer.keys[0].key)

    def pipeline(raw: bytes) -> object:
        outcome = verify_message(
            raw, transport_identity=signer.party, now=VECTOR_NOW, verifier=verifier
        )
        assert isinstance(outcome, Accepted)
        return outcome

    # The floor verifies a detached signature over the raw bytes as sent: the
    # same sizes, a verify that succeeds, and nothing the protocol adds.
    private = signer_key(contracts, sender).private_key
    detached = {raw: private.sign(raw) for raw in batch}

    def floor(raw: bytes) -> object:
        obj = json.loads(raw)
        public.verify(detached[raw], raw)
        return obj

    sizes = sorted(len(m) for m in batch)
    print(
        f"messages: {len(batch)} distinct enrichment.response, "
        f"{sizes[len(sizes) // 2]} bytes median, {args.rounds} rounds, one core"
    )
    bare_rate = rate(floor, batch, args.rounds)
    pipeline_rate = rate(pipeline, batch, args.rounds)
    print(
        f"bare floor (json.loads + one Ed25519 verify): {bare_rate:9.0f} msg/s "
        f"({1e6 / bare_rate:6.1f} µs/msg)"
    )
    print(
        f"verification pipeline:                        {pipeline_rate:9.0f} msg/s "
        f"({1e6 / pipeline_rate:6.1f} µs/msg)"
    )
    print(f"ratio pipeline / floor: {pipeline_rate / bare_rate:.2f} (goal >= 0.50)")


if __name__ == "__main__":
    main()
