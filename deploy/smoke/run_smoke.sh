#!/usr/bin/env bash
# Smoke test against a running standalone (deploy/pulsar-standalone.sh start):
# deploys deploy/smoke/state_probe.py as a Python function over REST and checks
#   - function state (get_state/put_state) really persists and is readable
#     through GET /admin/v3/functions/{tenant}/{ns}/{name}/state/{key},
#   - retainKeyOrdering gives a Key_Shared subscription and keeps each key on
#     one instance, in order,
#   - deliver_after delays reach the function no earlier than asked,
#   - delayed delivery precision on a plain Shared consumer.
# Prints the measurements and exits non-zero when a check fails.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PULSAR_VERSION="${PULSAR_VERSION:-4.0.8}"
PULSAR_HOME_DIR="${PULSAR_HOME_DIR:-$HOME/.cache/pulsarflow/pulsar}"
PULSAR_VENV="${PULSAR_VENV:-$HOME/.cache/pulsarflow/pulsar-venv}"
DIST_DIR="$PULSAR_HOME_DIR/apache-pulsar-$PULSAR_VERSION"
PY="$PULSAR_VENV/bin/python3"
export SMOKE_FUNCTION="${SMOKE_FUNCTION:-state-probe}"
export SMOKE_PARALLELISM="${SMOKE_PARALLELISM:-2}"

[[ -x "$PY" ]] || { echo "venv $PULSAR_VENV missing: run deploy/pulsar-standalone.sh install" >&2; exit 1; }
curl -sf -m 5 http://127.0.0.1:8080/admin/v2/clusters >/dev/null \
  || { echo "Pulsar is not answering on 127.0.0.1:8080: run deploy/pulsar-standalone.sh start" >&2; exit 1; }

"$PY" - "$HERE/state_probe.py" <<'EOF'
import datetime
import json
import sys
import time
import uuid

import pulsar
import requests

ADMIN = "http://127.0.0.1:8080"
NAME = __import__("os").environ["SMOKE_FUNCTION"]
PARALLELISM = int(__import__("os").environ["SMOKE_PARALLELISM"])
RUN = uuid.uuid4().hex[:8]
IN_TOPIC = f"persistent://public/default/probe-in-{RUN}"
OUT_TOPIC = f"persistent://public/default/probe-out-{RUN}"
FN_URL = f"{ADMIN}/admin/v3/functions/public/default/{NAME}"
failures = []


def check(ok, what):
    print(("PASS " if ok else "FAIL ") + what)
    if not ok:
        failures.append(what)


def now_ms():
    return time.time() * 1000.0


# Remove a function left over from an earlier run.
if requests.get(FN_URL, timeout=10).status_code == 200:
    requests.delete(FN_URL, timeout=60)
    print(f"deleted old function {NAME}")

client = pulsar.Client("pulsar://127.0.0.1:6650",
                       logger=pulsar.ConsoleLogger(pulsar.LoggerLevel.Warn))
out = client.subscribe(OUT_TOPIC, "smoke-reader",
                       initial_position=pulsar.InitialPosition.Earliest)
producer = client.create_producer(IN_TOPIC, batching_enabled=False)

config = {
    "tenant": "public",
    "namespace": "default",
    "name": NAME,
    "runtime": "PYTHON",
    "className": "state_probe.StateProbe",
    "inputs": [IN_TOPIC],
    "parallelism": PARALLELISM,
    "processingGuarantees": "ATLEAST_ONCE",
    "retainKeyOrdering": True,
    "subscriptionPosition": "Earliest",
    "autoAck": True,
    "userConfig": {"out_topic": OUT_TOPIC},
}
t0 = time.monotonic()
with open(sys.argv[1], "rb") as f:
    files = {
        "functionConfig": (None, json.dumps(config), "application/json"),
        "data": ("state_probe.py", f, "application/octet-stream"),
    }
    for attempt in range(30):
        f.seek(0)
        r = requests.post(FN_URL, files=files, timeout=120)
        if r.status_code != 503:
            break
        time.sleep(2)
t_post = time.monotonic() - t0
print(f"create: HTTP {r.status_code} in {t_post:.2f}s {r.text[:300]!r}")
check(r.status_code in (200, 204), "function created over REST")

status = {}
while time.monotonic() - t0 < 120:
    s = requests.get(FN_URL + "/status", timeout=10)
    if s.status_code == 200:
        status = s.json()
        if status.get("numRunning") == PARALLELISM:
            break
    time.sleep(0.5)
t_running = time.monotonic() - t0
print(f"status after {t_running:.2f}s: numRunning={status.get('numRunning')} "
      f"numInstances={status.get('numInstances')}")
check(status.get("numRunning") == PARALLELISM, f"{PARALLELISM} instances running")

# --- state + Key_Shared -----------------------------------------------------
keys = ["alpha", "beta", "gamma", "delta"]
per_key = 5
sent = 0
for i in range(per_key):
    for k in keys:
        producer.send(f"{k}-{i}".encode(), partition_key=k)
        sent += 1
producer.send(b"42", partition_key="numeric")  # shows the default input SerDe
producer.send(b"del-test", partition_key="deltest")
sent += 2

reports = []
first_out = None
deadline = time.monotonic() + 90
while len(reports) < sent and time.monotonic() < deadline:
    try:
        m = out.receive(timeout_millis=2000)
    except pulsar.Timeout:
        continue
    if first_out is None:
        first_out = time.monotonic() - t0
    out.acknowledge(m)
    rep = json.loads(m.data())
    if m.partition_key() != rep["key"]:
        check(False, f"output carries partition key {rep['key']!r} (got {m.partition_key()!r})")
    reports.append(rep)
print(f"first output {first_out if first_out is None else round(first_out, 2)}s after create; "
      f"got {len(reports)}/{sent} outputs")
check(len(reports) == sent, "all outputs received")

by_key = {}
for rep in reports:
    by_key.setdefault(rep["key"], []).append(rep)
for k in keys:
    counts = [r["count"] for r in by_key.get(k, [])]
    inputs = [r["input"] for r in by_key.get(k, [])]
    insts = sorted({r["instance"] for r in by_key.get(k, [])})
    print(f"  key {k}: counts={counts} instances={insts}")
    check(counts == list(range(1, per_key + 1)), f"state counter for {k} increments 1..{per_key}")
    check(inputs == [f"{k}-{i}" for i in range(per_key)], f"key {k} processed in order")
    check(len(insts) == 1, f"key {k} handled by one instance")
print(f"  instances used overall: {sorted({r['instance'] for r in reports})}, "
      f"python {reports[0]['python'] if reports else '?'}, sys.prefix {reports[0]['prefix'] if reports else '?'}, "
      f"cwd {reports[0]['cwd'] if reports else '?'}")
num = by_key.get("numeric", [{}])[0]
print(f"  payload b'42' arrived in process() as {num.get('input_type')!r}")
print(f"  del_counter test: {by_key.get('deltest', [{}])[0].get('del_counter')}")
sample = by_key.get("alpha", [{}])[-1]
print(f"  get_state before the last alpha message returned {sample.get('previous_raw')}")
print(f"  incr_counter/get_counter for alpha.hits: {sample.get('hits_after_incr')!r}/{sample.get('counter')!r}")

st = requests.get(FN_URL + "/state/alpha", timeout=10)
print(f"GET state/alpha: HTTP {st.status_code} {st.text}")
check(st.status_code == 200 and st.json().get("stringValue") == str(per_key), "state readable via admin")
st = requests.get(FN_URL + "/state/alpha.hits", timeout=10)
print(f"GET state/alpha.hits: HTTP {st.status_code} {st.text}")
st = requests.get(FN_URL + "/state/does-not-exist", timeout=10)
print(f"GET state/does-not-exist: HTTP {st.status_code} {st.text[:200]}")

topic_path = IN_TOPIC.replace("persistent://", "")
stats = requests.get(f"{ADMIN}/admin/v2/persistent/{topic_path}/stats", timeout=10).json()
subs = stats.get("subscriptions", {})
for sub_name, sub in subs.items():
    print(f"input subscription {sub_name!r}: type={sub.get('type')} consumers={len(sub.get('consumers', []))}")
check(any(s.get("type") == "Key_Shared" for s in subs.values()), "input subscription is Key_Shared")

# --- delayed delivery through the function ---------------------------------
delay_ms = 3000
sent_at = now_ms()
producer.send(b"delayed", partition_key="delayed",
              deliver_after=datetime.timedelta(milliseconds=delay_ms))
rep = None
deadline = time.monotonic() + 30
while rep is None and time.monotonic() < deadline:
    try:
        m = out.receive(timeout_millis=1000)
    except pulsar.Timeout:
        continue
    out.acknowledge(m)
    r = json.loads(m.data())
    if r["key"] == "delayed":
        rep = r
if rep:
    took = rep["processed_ms"] - sent_at
    print(f"deliver_after={delay_ms}ms through the function: processed {took:.0f}ms after send "
          f"({took - delay_ms:+.0f}ms)")
    check(took >= delay_ms, "function got the delayed message no earlier than asked")
else:
    check(False, "delayed message reached the function")

# --- delayed delivery precision on a plain Shared subscription --------------
dtopic = f"persistent://public/default/probe-delay-{RUN}"
dcons = client.subscribe(dtopic, "delay-check", consumer_type=pulsar.ConsumerType.Shared)
dprod = client.create_producer(dtopic, batching_enabled=False)
due = {}
for i, d in enumerate([250, 500, 750, 1000, 1500, 2000, 2500, 3000]):
    t = now_ms()
    dprod.send(str(i).encode(), deliver_after=datetime.timedelta(milliseconds=d))
    due[str(i)] = (t, d)
errs = []
deadline = time.monotonic() + 20
while len(errs) < len(due) and time.monotonic() < deadline:
    try:
        m = dcons.receive(timeout_millis=1000)
    except pulsar.Timeout:
        continue
    got = now_ms()
    dcons.acknowledge(m)
    t, d = due[m.data().decode()]
    errs.append((d, got - t - d))
for d, e in sorted(errs):
    print(f"  Shared deliver_after={d}ms: lateness {e:+.0f}ms")
if errs:
    lat = [e for _, e in errs]
    print(f"delayed delivery lateness: min {min(lat):+.0f}ms max {max(lat):+.0f}ms")
    check(min(lat) >= -5, "no delayed message delivered early")
check(len(errs) == len(due), "all delayed messages delivered")

final = requests.get(FN_URL + "/status", timeout=10).json()
print("instance restarts: " + ", ".join(
    f"{i['instanceId']}={i['status'].get('numRestarts')}" for i in final.get("instances", [])))

client.close()
print(f"SMOKE SUMMARY: {len(failures)} failed check(s)" + (f": {failures}" if failures else ""))
sys.exit(1 if failures else 0)
EOF
rc=$?

echo "--- pulsar-admin functions list --tenant public --namespace default"
if [[ -x "$DIST_DIR/bin/pulsar-admin" ]]; then
  "$DIST_DIR/bin/pulsar-admin" --admin-url http://127.0.0.1:8080 functions list --tenant public --namespace default || true
fi
echo "--- function instance logs: $DIST_DIR/logs/functions/public/default/$SMOKE_FUNCTION/"

if [[ "${SMOKE_KEEP_FUNCTION:-0}" != 1 ]]; then
  curl -s -o /dev/null -w "delete function: HTTP %{http_code}\n" -X DELETE \
    "http://127.0.0.1:8080/admin/v3/functions/public/default/$SMOKE_FUNCTION" || true
fi
exit $rc
