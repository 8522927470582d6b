"""py-spy around a running process, and its raw output summed up by who spends the time.

``record`` runs ``py-spy record --format raw`` on a pid for a bounded time; ``summarize``
reads the collapsed stacks and sums the samples by their leaf frame (self time), grouped
as a pulsarflow module, the Pulsar client, fastavro, the function-state client (gRPC),
the Functions runtime, or other; ``inclusive`` sums the samples that pass through frames
of interest (where a thread waits, with ``--idle``).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

LINE = re.compile(r"^(?P<stack>.*) (?P<count>\d+)$")
FRAME = re.compile(r"^(?P<func>.*) \((?P<file>[^()]*?)(?::(?P<line>\d+))?\)$")


def py_spy() -> str:
    found = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(found).exists():
        raise SystemExit("py-spy is not installed: pip install py-spy")
    return found


def record(pid: int, seconds: float, out: Path, idle: bool = False, rate: int = 100) -> subprocess.Popen[bytes]:
    """Start sampling ``pid`` for ``seconds`` into ``out`` (raw collapsed stacks); the caller waits.

    Without ``idle`` only the thread holding the GIL is sampled (``--gil``): py-spy's own
    idle detection counts threads blocked in a lock or a queue as busy, the GIL does not.
    """
    args = [py_spy(), "record", "--pid", str(pid), "--duration", str(max(1, round(seconds))), "--rate", str(rate),
            "--format", "raw", "--full-filenames", "--threads", "--nonblocking", "-o", str(out)]
    args.append("--idle" if idle else "--gil")
    return subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def stacks(path: Path) -> list[tuple[str, list[tuple[str, str]], int]]:
    """(thread name, frames root first as (function, file), samples) per line of a raw file."""
    found = []
    for text in path.read_text(errors="replace").splitlines():
        match = LINE.match(text)
        if not match:
            continue
        parts = match["stack"].split(";")
        thread = parts[0].split(": ", 1)[-1]
        frames = []
        for part in parts[1:]:
            frame = FRAME.match(part)
            frames.append((frame["func"], frame["file"]) if frame else (part, ""))
        found.append((thread, frames, int(match["count"])))
    return found


def group_of(file: str) -> str:
    """Who a frame belongs to: ``pulsarflow.<module>``, pulsar client, fastavro, function state, runtime, other."""
    if "apache-pulsar" in file:  # the functions worker's folders: its runtime, or the package of the function
        return "bench (the package)" if "/src/bench/" in file else "functions runtime"
    if "/pulsarflow/" in file or file.startswith("pulsarflow/"):
        module = file.rsplit("pulsarflow/", 1)[1].removesuffix(".py").replace("/", ".")
        return f"pulsarflow.{module}"
    if "fastavro" in file:
        return "fastavro"
    if "/bookkeeper/" in file or "grpc" in file or "state_context" in file:
        return "function state client (bookkeeper/grpc)"
    if "/pulsar/" in file or "_pulsar" in file or "libpulsar" in file:
        return "pulsar client"
    if "python-instance" in file or "prometheus" in file or "google/protobuf" in file:
        return "functions runtime"
    return "other"


def summarize(path: Path, top: int = 15, threads: tuple[str, ...] = ()) -> dict[str, Any]:
    """Self time by group and the top self-time frames (of ``threads`` only, if named)."""
    groups: Counter[str] = Counter()
    frames: Counter[str] = Counter()
    by_thread: Counter[str] = Counter()
    total = 0
    for thread, stack, count in stacks(path):
        if threads and not thread.startswith(threads):
            continue
        func, file = stack[-1] if stack else ("?", "")
        # A native thread of the Pulsar client holding the GIL with no Python frame of its own:
        # calling into Python (a send callback, a message listener) or back from it.
        groups["pulsar client threads (callbacks)" if func == "?" and not thread.startswith(("pulsarflow", "Thread"))
               else group_of(file)] += count
        frames[f"{func} ({_short(file)})"] += count
        by_thread[thread] += count
        total += count
    share = (lambda n: round(100 * n / total, 1)) if total else (lambda n: 0.0)
    return {"samples": total,
            "self_by_group_pct": {g: share(n) for g, n in groups.most_common()},
            "top_self_frames_pct": {f: share(n) for f, n in frames.most_common(top)},
            "by_thread_pct": {t: share(n) for t, n in by_thread.most_common(8)}}


def inclusive(path: Path, marks: dict[str, tuple[str, str]], thread: str) -> dict[str, Any]:
    """Share of one thread's samples whose stack passes through each mark (function name, file part)."""
    total = 0
    hits: Counter[str] = Counter()
    for name, stack, count in stacks(path):
        if not name.startswith(thread):
            continue
        total += count
        for label, (func, file) in marks.items():
            if any((f == func or f.endswith("." + func)) and file in path_ for f, path_ in stack):
                hits[label] += count
    return {"samples": total, **{label: round(100 * hits[label] / total, 1) if total else 0.0 for label in marks}}


def _short(file: str) -> str:
    for cut in ("site-packages/", "/work/main/", "python-instance/"):
        if cut in file:
            return file.split(cut, 1)[1]
    return file.rsplit("/", 2)[-1] if "/" in file else file
