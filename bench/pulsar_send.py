"""CPU per message of the Pulsar transport's send and flush, its switches A/B in one process.

    python -m bench.pulsar_send [--messages 5000] [--rounds 6] [--namespace perf]

Sends ``ExecuteTask``-sized Avro messages (each keyed, as the engines send them) and
``WorkflowEvent`` messages to topics of their own through ``PulsarTransport``, then
flushes, alternating the variants round by round; the figure is the process's CPU time
(all threads: the client's own included) per message, the minimum over the rounds, so
the other work on a shared machine weighs less than in a wall-clock rate. One JSON line
per variant, then the ratios.
"""

from __future__ import annotations

import argparse
import json
import time
import uuid
from typing import Any

from bench.codec import sample
from pulsarflow.codec import Codec
from pulsarflow.pulsar import transport as pt

VARIANTS = {
    "as before": {"fast_send": False, "batched": frozenset()},
    "fast send": {"fast_send": True, "batched": frozenset()},
    "fast send, batched events": {"fast_send": True, "batched": pt.BATCHED_RECORDS},
}


def one_round(client: Any, codec: Codec, variant: dict[str, Any], topics: tuple[str, str], count: int,
              payloads: tuple[bytes, bytes]) -> tuple[float, float]:
    transport = pt.PulsarTransport(client, codec, batched_records=variant["batched"])
    transport.fast_send = variant["fast_send"]
    transport.send(topics[0], "warm", payloads[0])
    transport.send(topics[1], "warm", payloads[1])
    transport.flush()
    cpu, wall = time.process_time(), time.perf_counter()
    for i in range(count):
        transport.send(topics[i % 2], f"wf-{i % 97}", payloads[i % 2])
        if i % 200 == 199:
            transport.flush()  # as a batch of the engine does
    transport.flush()
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    transport.close()
    return cpu / count * 1e6, wall / count * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description="CPU per message of PulsarTransport.send")
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--namespace", default="perf")
    parser.add_argument("--service-url", default="pulsar://127.0.0.1:6650")
    args = parser.parse_args()
    import pulsar

    codec = Codec()
    client = pulsar.Client(args.service_url, operation_timeout_seconds=30,
                           logger=pulsar.ConsoleLogger(pulsar.LoggerLevel.Warn))
    payloads = (codec.encode(sample(codec, "pulsarflow.ExecuteTask")),
                codec.encode(sample(codec, "pulsarflow.WorkflowEvent")))
    run = uuid.uuid4().hex[:6]
    base_name = f"persistent://public/{args.namespace}/send-{run}"
    topics = (f"{base_name}-tasks", f"{base_name}-events")
    best: dict[str, list[float]] = {name: [1e9, 1e9] for name in VARIANTS}
    try:
        for _ in range(args.rounds):
            for name, variant in VARIANTS.items():
                cpu, wall = one_round(client, codec, variant, topics, args.messages, payloads)
                best[name] = [min(best[name][0], cpu), min(best[name][1], wall)]
    finally:
        client.close()
    before = best["as before"][0]
    for name, (cpu, wall) in best.items():
        print(json.dumps({"case": "pulsar-send", "variant": name, "cpu_us_per_message": round(cpu, 2),
                          "wall_us_per_message": round(wall, 2), "cpu_vs_before": round(cpu / before, 3),
                          "messages": args.messages, "rounds": args.rounds}), flush=True)


if __name__ == "__main__":
    main()
