#!/usr/bin/python3
"""A ZeroMQ peer that starts CALLS calls of FUNCTION (slow.talk by default) with LINES, whose functions
print as they run; once the first line has arrived it stops reading: it stops its own process (SIGSTOP)
until the test continues it (SIGCONT), then reads everything. Prints how many output lines and results
it got, whether the server said goodbye, and how many progress reports it got.

Usage: slow_reader.py ENDPOINT CALLS LINES [FUNCTION]"""
import os
import signal
import sys

import msgpack
import zmq

endpoint, calls, lines = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
function = sys.argv[4] if len(sys.argv) > 4 else "slow.talk"
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
for i in range(calls):
    send({"kind": "call", "id": 100 + i, "fn": function}, [msgpack.packb([lines], use_bin_type=True)])
header, body = receive(10_000)  # a function has started (so the calls have left this process) before we stop
assert header and header["kind"] in ("output", "progress"), header
output, results, errors, closed, progress = 0, 0, [], False, 0
if header["kind"] == "output":
    output += body.decode("utf-8").count("\n")
else:
    progress += 1
print("SENT", os.getpid(), flush=True)
os.kill(os.getpid(), signal.SIGSTOP)  # the test continues us after a while: meanwhile nothing is read

while results + len(errors) < calls:
    header, body = receive(30_000)
    if header is None:
        break
    kind = header["kind"]
    if kind == "output":
        output += body.decode("utf-8").count("\n")
    elif kind == "progress":
        progress += 1
    elif kind == "result":
        results += 1
    elif kind == "error":
        errors.append(msgpack.unpackb(body, raw=False).get("code"))
    elif kind == "close":
        closed = True
        break
    elif kind == "ping":
        send({"kind": "pong", "id": header.get("id", 0)})
print(f"results {results} output {output} errors {sorted(set(errors))} closed {closed} progress {progress}", flush=True)
