"""Avro encode/decode cost per message type, in microseconds.

    python -m bench.codec [--rounds 2000]

Each record gets a deterministic, typical value (short strings, small payloads, one item
per array, optional fields filled); one JSON line per record type.

Decoding reads the writer's identity first. ``identity_vs_plain`` is the cost of decoding
current bytes that way over decoding the same record with the writer schema given (what a
codec without identities does); ``old_writer_vs_plain`` the cost of bytes written by the
oldest frozen release, resolved to the current schema (records it already had).
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

from pulsarflow import schemas
from pulsarflow.codec import BASELINE_RELEASE, HEADER_SIZE, Codec
from pulsarflow.messages import RECORD_CLASSES

SAMPLES = {"string": "order-42", "bytes": b'["payload",1]', "int": 7, "long": 1_767_225_600_000,
           "double": 2.5, "boolean": True, "null": None}


def sample(codec: Codec, schema: Any, depth: int = 0) -> Any:
    if isinstance(schema, str):
        return SAMPLES[schema] if schema in SAMPLES else sample(codec, codec.named[schema], depth)
    if isinstance(schema, list):
        branches = [b for b in schema if b != "null"]
        return sample(codec, branches[0], depth + 1) if depth < 4 else None
    if schema["type"] == "enum":
        return schema["symbols"][0]
    if schema["type"] == "array":
        return (sample(codec, schema["items"], depth + 1),)
    name = schema["name"] if "." in schema["name"] else f"{schema['namespace']}.{schema['name']}"
    return RECORD_CLASSES[name](**{f["name"]: sample(codec, f["type"], depth + 1) for f in schema["fields"]})


def _per_call_us(call: Any, rounds: int) -> float:
    t0 = time.perf_counter()
    for _ in range(rounds):
        call()
    return (time.perf_counter() - t0) / rounds * 1e6


def measure(codec: Codec, old: Codec, name: str, rounds: int) -> dict[str, Any]:
    value = sample(codec, name)
    data = codec.encode(value)
    body = data[HEADER_SIZE:]
    encode = _per_call_us(lambda: codec.encode(value), rounds)
    plain = _per_call_us(lambda: codec.decode(name, body, writer=codec), rounds)
    decode = _per_call_us(lambda: codec.decode(name, data), rounds)
    line: dict[str, Any] = {"case": "codec", "record": name.split(".")[-1], "bytes": len(data),
                            "encode_us": round(encode, 2), "decode_us": round(decode, 2),
                            "identity_vs_plain": round(decode / plain, 3)}
    if name in old.named:
        old_bytes = old.encode(sample(old, name))
        line["old_writer_vs_plain"] = round(_per_call_us(lambda: codec.decode(name, old_bytes), rounds) / plain, 3)
    return line


def main() -> None:
    parser = argparse.ArgumentParser(description="Avro codec cost per message type")
    parser.add_argument("--rounds", type=int, default=2000)
    args = parser.parse_args()
    codec = Codec()
    old = Codec(schemas.schema_dir() / "history" / BASELINE_RELEASE)
    for name in sorted(RECORD_CLASSES):
        print(json.dumps(measure(codec, old, name, args.rounds)), flush=True)


if __name__ == "__main__":
    main()
