"""A peer that says hello to a server that requires a shared secret, and then nothing: it prints what the server says."""
import sys

import msgpack
import zmq

socket = zmq.Context.instance().socket(zmq.DEALER)
socket.setsockopt(zmq.LINGER, 0)
socket.connect(sys.argv[1])
socket.send(msgpack.packb({"v": 1, "kind": "hello", "id": 1, "versions": [1], "ser": "msgpack"}, use_bin_type=True))
hello = msgpack.unpackb(socket.recv_multipart()[0], raw=False)
print("hello", ",".join(hello.get("auth") or []), flush=True)
if not socket.poll(30_000):
    print("nothing more within 30 s")
    sys.exit(1)
frames = socket.recv_multipart()
header = msgpack.unpackb(frames[0], raw=False)
body = msgpack.unpackb(frames[1], raw=False) if len(frames) > 1 else {}
print("then", header["kind"], body.get("reason"), "|", body.get("message"), flush=True)
socket.close(0)
