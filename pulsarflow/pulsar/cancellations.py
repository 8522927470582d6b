"""How an executor on Pulsar hears that a task was cancelled: a broadcast topic it reads alone.

Every executor subscribes to the non-persistent cancellation topic under a fresh exclusive
subscription; a notice nobody hears is only a lost hint (see ``pulsarflow.runtime.cancellations``).
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from pulsarflow.codec import Codec
from pulsarflow.messages import CancelTask, TaskExecutorMessage
from pulsarflow.runtime.cancellations import Cancellations, cancellation_key

log = logging.getLogger("pulsarflow.executor")


def follow(client: Any, topic: str, codec: Codec, cancellations: Cancellations) -> Any:
    """Subscribe (exclusively, under a fresh name) to the cancellation broadcast; returns the consumer."""

    def on_notice(consumer: Any, message: Any) -> None:
        try:
            notice = codec.decode(TaskExecutorMessage, message.data()).message
            if isinstance(notice, CancelTask):
                cancellations.add(cancellation_key(notice.task_id, notice.generation))
        except Exception:  # a bad notice is only a lost hint; the engine already ignores the result
            log.exception("unreadable cancellation notice on %s", topic)
        consumer.acknowledge(message)

    return client.subscribe(topic, f"executor-{uuid.uuid4().hex}", message_listener=on_notice)
