"""The Python client across a server restart: a call, the server's close, then a call answered by the next server."""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ipyrpc_client import ConnectionClosed, IpyRpcClient  # noqa: E402

endpoint, secret, tag = sys.argv[1], sys.argv[2], sys.argv[3]
client = IpyRpcClient(endpoint, secret=secret, timeout=30, output=lambda stream, text: None)
print("before:", client.call("restart.add_one", tag, 1), flush=True)
deadline = time.monotonic() + 30
try:
    while time.monotonic() < deadline:
        client.poll(0.1)
    print("no close within 30 s")
    sys.exit(1)
except ConnectionClosed as e:
    print("closed:", e.reason, flush=True)
print("after:", client.call("restart.add_one", tag, 10), flush=True)
client.close()
