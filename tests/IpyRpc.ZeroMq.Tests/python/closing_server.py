"""The Python client against a server, played here, that closes the connection with a call waiting for its answer.

First the close says the server never read the call (`read` below its id): the client says hello again and makes the
call again, and its caller sees only the answer. Then the close says the server read it: the caller is told it may have
run (ConnectionClosed, not_delivered False), and the next call says hello again first.
"""
import os
import sys
import threading

import msgpack
import zmq

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ipyrpc_client import ConnectionClosed, IpyRpcClient  # noqa: E402

router = zmq.Context.instance().socket(zmq.ROUTER)
router.setsockopt(zmq.LINGER, 0)
port = router.bind_to_random_port("tcp://127.0.0.1")
seen = []  # (kind, id, fn) in order


def reply(peer, header, body=None, **fields):
    frames = [peer, msgpack.packb(dict({"v": 1, "ser": "msgpack"}, **fields), use_bin_type=True)]
    if body is not None:
        frames.append(msgpack.packb(body, use_bin_type=True))
    router.send_multipart(frames)


def serve():
    calls, streams = 0, 0
    while True:
        frames = router.recv_multipart()
        peer, header = frames[0], msgpack.unpackb(frames[1], raw=False)
        kind, mid = header["kind"], header.get("id")
        seen.append((kind, mid, header.get("fn")))
        if kind == "hello":
            reply(peer, header, kind="hello", id=mid, versions=[1], agent="played-server/1")
        elif kind == "describe":
            reply(peer, header, [], kind="result", id=mid)
        elif kind == "call" and header["fn"] == "stop":
            reply(peer, header, None, kind="result", id=mid)
            return
        elif kind == "call" and header["fn"] == "count":
            streams += 1
            if streams == 1:  # a stream the server never read: made again
                reply(peer, header, {"reason": "server_stopping", "message": "restarting", "read": mid - 1}, kind="close", id=0)
            elif streams == 2:
                reply(peer, header, [0, 1, 2], kind="items", id=mid)
                reply(peer, header, 3, kind="result", id=mid)
            else:             # read, an item sent, then closed: its caller has items already, so it is not made again
                reply(peer, header, [0], kind="items", id=mid)
                reply(peer, header, {"reason": "server_stopping", "message": "restarting", "read": mid}, kind="close", id=0)
        elif kind == "call":
            calls += 1
            if calls == 1:    # not read: the close's mark is below this call's id
                reply(peer, header, {"reason": "server_stopping", "message": "restarting", "read": mid - 1}, kind="close", id=0)
            elif calls == 3:  # read, and then the connection closed: it may have run
                reply(peer, header, {"reason": "server_stopping", "message": "restarting", "read": mid}, kind="close", id=0)
            else:
                args = msgpack.unpackb(frames[2], raw=False)
                reply(peer, header, args[0] + 1, kind="result", id=mid)


server = threading.Thread(target=serve, daemon=True)
server.start()
client = IpyRpcClient(f"tcp://127.0.0.1:{port}", timeout=10, output=lambda stream, text: None)
print("made again:", client.call("inc", 41))
try:
    client.call("inc", 1)
    print("second: answered")
except ConnectionClosed as e:
    print(f"second: ConnectionClosed not_delivered={e.not_delivered} reason={e.reason}")
print("after:", client.call("inc", 99))
print("stream made again:", list(client.stream("count", 3)))
got = []
try:
    for item in client.stream("count", 3):
        got.append(item)
    print("stream cut: finished")
except ConnectionClosed as e:
    print(f"stream cut after {got}: ConnectionClosed not_delivered={e.not_delivered}")
client.call("stop")
server.join(5)
print("hellos:", sum(1 for kind, _, _ in seen if kind == "hello"))
print("count calls seen:", sum(1 for kind, _, fn in seen if kind == "call" and fn == "count"))
print("inc calls seen:", sum(1 for kind, _, fn in seen if kind == "call" and fn == "inc"))
client.close()
