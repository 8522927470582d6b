"""A tiny Pulsar Function that proves function state and keyed publishing work.

For every input message it:
  * reads a per-key counter from function state (``context.get_state``),
  * increments it and writes it back (``context.put_state`` wants a str),
  * bumps an atomic counter (``context.incr_counter``) for comparison,
  * publishes a JSON report to the topic named by the user config key
    ``out_topic`` with the input key as partition key.

The message text ``del-test`` additionally exercises ``del_counter``.
"""
import json
import os
import sys
import time

import pulsar


class StateProbe(pulsar.Function):
    def process(self, input, context):
        key = context.get_partition_key() or "no-key"
        previous = context.get_state(key)
        count = int(previous) + 1 if previous else 1
        context.put_state(key, str(count))
        hits = context.incr_counter(key + ".hits", 1)

        report = {
            "key": key,
            "count": count,
            "previous_raw": None if previous is None else repr(previous),
            "hits_after_incr": hits,
            "counter": context.get_counter(key + ".hits"),
            "input_type": type(input).__name__,
            "input": input.decode("utf-8", "replace") if isinstance(input, bytes) else str(input),
            "instance": context.get_instance_id(),
            "pid": os.getpid(),
            "python": sys.version.split()[0],
            "prefix": sys.prefix,
            "processed_ms": int(time.time() * 1000),
            "event_ms": context.get_message_eventtime(),
            "properties": context.get_message_properties(),
            "cwd": os.getcwd(),
        }
        if report["input"] == "del-test":
            context.incr_counter("probe-del", 5)
            before = context.get_counter("probe-del")
            try:
                context.del_counter("probe-del")
                report["del_counter"] = {"before": before, "after": context.get_counter("probe-del")}
            except Exception as exc:  # report, do not fail the message
                report["del_counter"] = {"before": before, "error": repr(exc)}

        out_topic = context.get_user_config_value("out_topic")
        context.publish(
            out_topic,
            json.dumps(report).encode("utf-8"),
            message_conf={"partition_key": key},
        )
        return None
