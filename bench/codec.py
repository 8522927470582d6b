"""Avro encode/decode cost per message type, in microseconds.

    python -m bench.codec [--rounds 2000]

Each record gets a deterministic, typical value (short strings, small payloads, one item
per array, optional fields filled); one JSON line per record type.
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

from pulsarflow.codec import Codec
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


def measure(codec: Codec, name: str, rounds: int) -> dict[str, Any]:
    value = sample(codec, name)
    data = codec.encode(value)
    t0 = time.perf_counter()
    for _ in range(rounds):
        codec.encode(value)
    t1 = time.perf_counter()
    for _ in range(rounds):
        codec.decode(name, data)
    t2 = time.perf_counter()
    return {"case": "codec", "record": name.split(".")[-1], "bytes": len(data),
            "encode_us": round((t1 - t0) / rounds * 1e6, 2), "decode_us": round((t2 - t1) / rounds * 1e6, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description="Avro codec cost per message type")
    parser.add_argument("--rounds", type=int, default=2000)
    args = parser.parse_args()
    codec = Codec()
    for name in sorted(RECORD_CLASSES):
        print(json.dumps(measure(codec, name, args.rounds)), flush=True)


if __name__ == "__main__":
    main()
