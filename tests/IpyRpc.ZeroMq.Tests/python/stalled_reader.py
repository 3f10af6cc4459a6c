#!/usr/bin/python3
"""A ZeroMQ peer that calls a function printing many long lines, then stops reading: it stops its own
process (SIGSTOP) until the test continues it (SIGCONT), then reads everything. Prints how many output
lines and results it got."""
import os
import signal
import sys

import msgpack
import zmq

endpoint, lines = sys.argv[1], int(sys.argv[2])
socket = zmq.Context.instance().socket(zmq.DEALER)
socket.setsockopt(zmq.LINGER, 0)
socket.setsockopt(zmq.RCVHWM, 100)
socket.connect(endpoint)


def send(header, parts=()):
    socket.send_multipart([msgpack.packb(dict(header, v=1, ser="msgpack"), use_bin_type=True)] + list(parts))


def receive(timeout_ms):
    if not socket.poll(timeout_ms):
        return None, None
    frames = socket.recv_multipart()
    return msgpack.unpackb(frames[0], raw=False), (frames[1] if len(frames) > 1 else b"")


send({"kind": "hello", "id": 1, "versions": [1]})
header, _ = receive(10_000)
assert header and header["kind"] == "hello", header
send({"kind": "call", "id": 100, "fn": "slow.flood"}, [msgpack.packb([lines], use_bin_type=True)])
header, body = receive(10_000)  # the function has started (and the call has left this process) before we stop
assert header and header["kind"] == "output", header
output, results, errors = body.decode("utf-8").count("\n"), 0, []
print("SENT", os.getpid(), flush=True)
os.kill(os.getpid(), signal.SIGSTOP)  # the test continues us after a while: meanwhile nothing is read

while results + len(errors) < 1:
    header, body = receive(30_000)
    if header is None:
        break
    kind = header["kind"]
    if kind == "output":
        output += body.decode("utf-8").count("\n")
    elif kind == "result":
        results += 1
    elif kind == "error":
        errors.append(msgpack.unpackb(body, raw=False).get("code"))
print(f"results {results} output {output} errors {sorted(set(errors))}", flush=True)
