"""A peer, written from PROTOCOL.md, that sends more calls at once than its connection may run (the server allows one).

It holds the one place with `wait`, sends `add` with a 300 ms timeout_ms and fifty more `add`s behind it, and prints:
when the timed-out call was answered (while the place is still held), then, after cancelling the `wait`, whether
every other call was answered, rightly.
"""
import sys
import time

import msgpack
import zmq

socket = zmq.Context.instance().socket(zmq.DEALER)
socket.setsockopt(zmq.LINGER, 0)
socket.connect(sys.argv[1])
gate = sys.argv[2]


def send(header, *parts):
    socket.send_multipart([msgpack.packb(dict(header, v=1, ser="msgpack"), use_bin_type=True)] + [msgpack.packb(p, use_bin_type=True) for p in parts])


def receive(wait_ms=20_000):
    if not socket.poll(wait_ms):
        print("nothing within", wait_ms, "ms", flush=True)
        sys.exit(1)
    frames = socket.recv_multipart()
    header = msgpack.unpackb(frames[0], raw=False)
    body = msgpack.unpackb(frames[1], raw=False) if len(frames) > 1 else None
    return header, body


send({"kind": "hello", "id": 1, "versions": [1]})
receive()
send({"kind": "call", "id": 2, "fn": "wait"}, [gate])
sent = time.monotonic()
send({"kind": "call", "id": 3, "fn": "add", "timeout_ms": 300}, [1, 2])
for i in range(50):
    send({"kind": "call", "id": 100 + i, "fn": "add"}, [i, 1])

header, body = receive()
print("first", header["id"], header["kind"], body.get("code"), f"{(time.monotonic() - sent) * 1000:.0f} ms", "|", body.get("message"), flush=True)

send({"kind": "cancel", "id": 2})
answers = []
held = None
while len(answers) < 50 or held is None:
    header, body = receive()
    if header["id"] == 2:
        held = (header["kind"], body.get("code") if isinstance(body, dict) else body)
    elif header["kind"] == "result":
        answers.append((header["id"], body))
    else:
        print("unexpected", header, body, flush=True)
print("held", held[0], held[1], flush=True)
# They start in the order sent; a reply may overtake the one before it (a call gives its place back before its reply goes).
print("all answered", sorted(a[0] for a in answers) == list(range(100, 150)), flush=True)
print("right", all(value == (call - 100) + 1 for call, value in answers), flush=True)
socket.close(0)
