"""The Python client's JsonRpcClient hearing a server's events from its event stream, with the standard library alone."""
import os
import sys

sys.modules["zmq"] = None      # as if python3-zmq were not installed
sys.modules["msgpack"] = None  # nor python3-msgpack
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ipyrpc_client  # noqa: E402

client = ipyrpc_client.JsonRpcClient(sys.argv[1])
for i, (name, payload) in enumerate(client.events("bw.ticked", "bw.*")):
    print("event:", name, payload, flush=True)
    if i == 2:
        break  # leaving the loop closes the stream
try:
    next(client.events("nothing.*"))
except ipyrpc_client.RemoteError as e:
    print("refused:", e.code, "|", e.message)
