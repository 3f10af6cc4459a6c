"""The Python client's JsonRpcClient with neither ZeroMQ nor msgpack importable: the standard library alone."""
import os
import sys

sys.modules["zmq"] = None      # as if python3-zmq were not installed
sys.modules["msgpack"] = None  # nor python3-msgpack
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ipyrpc_client  # noqa: E402

try:
    ipyrpc_client.IpyRpcClient("tcp://127.0.0.1:1")
except ImportError as e:
    print("zeromq client:", e)
ipyrpc_client.json_rpc_demo(sys.argv[1])
