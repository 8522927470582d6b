"""``pulsarflow deadletters``: read the dead letters of an app and re-publish them once fixed.

    pulsarflow deadletters list [--json]                   every letter not dealt with yet, oldest first
    pulsarflow deadletters show ID [--json]                one letter: reason, where it came from, its message
    pulsarflow deadletters replay ID... | --all [--force] [--keep]
                                                           publish each letter's message to its topic again

Letters are read through the durable subscription that keeps them (see
``pulsarflow.pulsar.deadletters``); ``list`` and ``show`` leave them there, ``replay``
acknowledges each letter it re-published (``--keep`` leaves it). A letter is replayed only
when its message is whole, decodes with this release and was meant for one of the app's
engines; ``--force`` skips the last two checks. Tests and embedded programs pass a ready
``DeadLetterQueue`` to :func:`main` (``EmbeddedDeadLetters`` reads an EmbeddedEnvironment's).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from datetime import datetime, timezone
from typing import Any, Protocol

from pulsarflow.codec import Codec
from pulsarflow.errors import DecodeError, PulsarflowError, SearchError
from pulsarflow.messages import DeadLetter, TagEngineMessage, TaskExecutorMessage, WorkflowEngineMessage
from pulsarflow.pulsar.connection import ConnectionConfig, add_arguments, as_config, from_args
from pulsarflow.runtime import deadletters
from pulsarflow.topics import Topics

ACTIONS = ("list", "show", "replay")


class DeadLetterQueue(Protocol):
    """Where the letters are read from, and their messages re-published to."""

    def letters(self) -> Iterator[tuple[str, DeadLetter]]: ...

    def publish(self, topic: str, key: str, payload: bytes) -> None: ...

    def settle(self, ident: str) -> None:
        """The letter is dealt with: it leaves the list."""
        ...

    def close(self) -> None: ...


class EmbeddedDeadLetters:
    """The dead letters an EmbeddedEnvironment kept (``env.dead_letters``), ids by position."""

    def __init__(self, env: Any) -> None:
        self.env = env

    def letters(self) -> Iterator[tuple[str, DeadLetter]]:
        yield from ((str(n), letter) for n, letter in enumerate(self.env.dead_letters) if letter is not None)

    def publish(self, topic: str, key: str, payload: bytes) -> None:
        self.env.transport.send(topic, key, payload)

    def settle(self, ident: str) -> None:
        self.env.dead_letters[int(ident)] = None  # keeps the other ids stable

    def close(self) -> None:
        pass


def register(sub: Any) -> None:
    """Add ``deadletters`` to the ``pulsarflow`` parser's subcommands."""
    parser = sub.add_parser("deadletters", help="read and replay dead letters",
                            description="read the dead letters of an app and re-publish them once fixed")
    parser.set_defaults(deadletters=True)
    parser.add_argument("action", choices=ACTIONS)
    parser.add_argument("ids", nargs="*", help="letter ids (from list), for show and replay")
    parser.add_argument("--all", action="store_true", help="replay every letter")
    parser.add_argument("--force", action="store_true",
                        help="replay letters that do not decode, or were refused, or are not for an engine")
    parser.add_argument("--keep", action="store_true", help="replay but keep the letters in the list")
    parser.add_argument("--json", action="store_true", help="print JSON for scripts")
    add_arguments(parser)
    parser.add_argument("--tenant", default="public")
    parser.add_argument("--namespace", default="default")
    parser.add_argument("--app", default="pulsarflow")


def main(argv: list[str], queue: DeadLetterQueue | None = None, topics: Topics | None = None) -> int:
    """Run one ``deadletters`` command; ``queue`` replaces the Pulsar one built from the options."""
    parser = argparse.ArgumentParser(prog="pulsarflow")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["deadletters", *argv])
    try:
        return execute(args, queue, topics)
    except PulsarflowError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def execute(args: argparse.Namespace, queue: DeadLetterQueue | None = None, topics: Topics | None = None) -> int:
    topics = topics or Topics(args.tenant, args.namespace, args.app)
    if args.action in ("show", "replay") and not args.ids and not (args.action == "replay" and args.all):
        raise SearchError(f"deadletters {args.action} needs letter ids (see `pulsarflow deadletters list`)"
                          + (" or --all" if args.action == "replay" else ""))
    own, queue = queue is None, queue or _pulsar_queue(from_args(args), topics)
    try:
        found = dict(queue.letters())
        if args.action == "list":
            rows = [_summary(ident, letter) for ident, letter in found.items()]
            print(json.dumps(rows, indent=2) if args.json else _table(rows))
            return 0
        wanted = list(found) if args.action == "replay" and args.all else args.ids
        missing = [ident for ident in wanted if ident not in found]
        if missing:
            raise SearchError(f"no dead letter {', '.join(missing)} (known: {', '.join(found) or 'none'})")
        if args.action == "show":
            for ident in wanted:
                _print_letter(ident, found[ident], topics, args.json)
            return 0
        return _replay_all(queue, {i: found[i] for i in wanted}, topics, args)
    finally:
        if own:
            queue.close()


def _pulsar_queue(service_url: str | ConnectionConfig, topics: Topics) -> DeadLetterQueue:
    from pulsarflow.pulsar.deadletters import PulsarDeadLetters
    from pulsarflow.pulsar.engine_worker import client_logger

    client = as_config(service_url).client(logger=client_logger())
    try:
        return PulsarDeadLetters(client, topics.dead_letters, owns_client=True)
    except Exception:
        client.close()
        raise


def _summary(ident: str, letter: DeadLetter) -> dict[str, Any]:
    return {"id": ident, "at": _time(letter.at_ms), "kind": letter.kind or "?", "topic": letter.topic,
            "key": letter.key, "size": letter.size, "truncated": letter.truncated, "attempts": letter.attempts,
            "sha256": letter.sha256, "reason": letter.reason}


def _time(at_ms: int) -> str:
    return datetime.fromtimestamp(at_ms / 1000, tz=timezone.utc).isoformat(timespec="seconds")


def _table(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return "no dead letters"
    lines = [f"{r['id']:<12} {r['at']:<25} {r['kind']:<16} {r['topic'].rsplit('/', 1)[-1]:<30} "
             f"key={r['key'][:40]!r} {r['size']:,} bytes\n{'':<12} {r['reason'][:200]}" for r in rows]
    return "\n".join(lines) + f"\n{len(rows)} dead letter(s); `pulsarflow deadletters show ID` for one"


def _print_letter(ident: str, letter: DeadLetter, topics: Topics, as_json: bool) -> None:
    row = _summary(ident, letter)
    message, problem = _decoded(letter, topics)
    row["message"] = repr(message)[:2_000] if message is not None else None
    row["payload_hex"] = letter.payload[:256].hex()
    if as_json:
        print(json.dumps(row, indent=2))
        return
    for field in ("id", "at", "kind", "topic", "key", "size", "truncated", "attempts", "sha256", "reason"):
        print(f"{field + ':':<11}{row[field]}")
    print(f"{'message:':<11}{row['message'] if message is not None else problem}")
    if message is None:
        print(f"{'payload:':<11}{row['payload_hex']}{' ...' if len(letter.payload) > 256 else ''}")


def _input_type(topic: str, topics: Topics) -> tuple[type, str] | None:
    """The envelope an engine's input topic carries, and the field that is its key."""
    if topic == topics.workflow_engine:
        return WorkflowEngineMessage, "workflow_id"
    if topic == topics.tag_engine:
        return TagEngineMessage, "tag_key"
    if topic.startswith(topics.executor("")):
        return TaskExecutorMessage, "task_id"
    return None


def _decoded(letter: DeadLetter, topics: Topics) -> tuple[Any, str]:
    """The letter's message decoded with this release, or why not."""
    kind = _input_type(letter.topic, topics)
    if kind is None:
        return None, f"(addressed to {letter.topic}, not to an engine of app {topics.app!r})"
    if letter.truncated:
        return None, f"(only the first {len(letter.payload):,} of {letter.size:,} bytes were kept)"
    try:
        return Codec().decode(kind[0], letter.payload), ""
    except DecodeError as exc:
        return None, f"(does not decode with this release: {exc})"


def _replay_all(queue: DeadLetterQueue, letters: dict[str, DeadLetter], topics: Topics,
                args: argparse.Namespace) -> int:
    refused = 0
    for ident, letter in letters.items():
        why_not = _why_not_replay(letter, topics, args.force)
        if why_not:
            refused += 1
            print(f"{ident}: not replayed: {why_not}", file=sys.stderr)
            continue
        message, _ = _decoded(letter, topics)
        kind = _input_type(letter.topic, topics)
        key = getattr(message, kind[1]) if message is not None and kind is not None else letter.key
        queue.publish(letter.topic, key, letter.payload)
        if not args.keep:
            queue.settle(ident)
        print(f"{ident}: replayed to {letter.topic} (key {key[:80]!r})")
    return 1 if refused else 0


def _why_not_replay(letter: DeadLetter, topics: Topics, force: bool) -> str:
    if letter.truncated:
        return (f"only the first {len(letter.payload):,} of {letter.size:,} bytes were kept (sha256 "
                f"{letter.sha256}); the message cannot be rebuilt from the letter")
    if force:
        return ""
    message, problem = _decoded(letter, topics)
    if message is None:
        return f"{problem.strip('()')}; upgrade first, or pass --force"
    if letter.kind == deadletters.REFUSED:
        return ("it was refused (a limit or a topic); it would be refused again unless the limits changed: "
                "pass --force to replay it anyway")
    return ""
