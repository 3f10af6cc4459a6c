"""The Python client's subscriptions across dropped connections to a server that stays up (the test stops and starts its
listener, publishing meanwhile): it hears what was published while it was away, once and in order, and is told (a
RuntimeWarning, events_missed) when the server no longer keeps all of it. Each step is signalled to the test by a call."""
import os
import sys
import time
import warnings

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ipyrpc_client import ConnectionClosed, IpyRpcClient, RemoteError  # noqa: E402

import msgpack  # noqa: E402

endpoint, secret, tag = sys.argv[1], sys.argv[2], sys.argv[3]
client = IpyRpcClient(endpoint, secret=secret, timeout=30, output=lambda stream, text: None)
print("matched:", client.subscribe("restart.*"), flush=True)


def step(n):
    client.call("restart.add_one", tag, n)  # the test waits for the count of these


def wait_for_close():
    deadline = time.monotonic() + 30
    try:
        while time.monotonic() < deadline:
            client.poll(0.05)
    except ConnectionClosed as e:
        return e.reason
    return "no close"


def heard(count):
    deadline = time.monotonic() + 30
    while len(client.events) < count and time.monotonic() < deadline:
        client.poll(0.05)
    return [payload for _, payload in client.events]


step(1)                          # the test publishes 0..4, stops listening, publishes 5..14, listens again
print("closed:", wait_for_close(), flush=True)
with warnings.catch_warnings(record=True) as told:
    warnings.simplefilter("always")
    step(2)                      # connects again, asking for what it missed; the test then publishes 15..19
    ticks = heard(20)
print("events:", " ".join(map(str, ticks)), flush=True)
print("missed:", client.events_missed, len(told), flush=True)

client.events.clear()
step(3)                          # the test stops listening, publishes 300 (the server keeps 256), listens again
print("closed:", wait_for_close(), flush=True)
with warnings.catch_warnings(record=True) as told:
    warnings.simplefilter("always")
    step(4)
    ticks = heard(256)
print("after the gap:", len(ticks), ticks[0], ticks[-1], flush=True)
print("gap:", [reason for _, reason, _ in client.events_missed], "|", told[0].message if told else "no warning", flush=True)

# The wire itself: a resume that is not an id is refused, one this server did not give starts now and says so.
try:
    client._request({"kind": "subscribe", "fn": "restart.*"}, [msgpack.packb({"resume": 5})], result=True)
    print("bad resume: accepted")
except RemoteError as e:
    print("bad resume:", e.code, flush=True)
with warnings.catch_warnings(record=True):
    warnings.simplefilter("always")
    client._subscribe("restart.*", "0badc0de-7", renewing=True)
print("foreign id:", client.events_missed[-1][1], flush=True)

# Another client, started later, goes on from the id this one kept.
kept = client.events_last_id
step(5)                          # the test publishes 320..324
client.close()
later = IpyRpcClient(endpoint, secret=secret, timeout=30, output=lambda stream, text: None)
with warnings.catch_warnings(record=True) as told:
    warnings.simplefilter("always")
    later.subscribe("restart.*", after=kept)
deadline = time.monotonic() + 30
while len(later.events) < 5 and time.monotonic() < deadline:
    later.poll(0.05)
print("later:", [payload for _, payload in later.events], len(told), flush=True)
later.close()
