"""The Python client's event loop going on across dropped connections: it connects again and hears what it missed."""
import os
import sys
import warnings

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ipyrpc_client  # noqa: E402

client = ipyrpc_client.JsonRpcClient(sys.argv[1], timeout=30)
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    for name, payload in client.events("bw.ticked"):
        print("tick", payload["number"], flush=True)
        if payload["number"] == int(sys.argv[2]):
            break
print("missed", getattr(client, "events_missed", 0), "|", " / ".join(str(w.message) for w in caught))
print("last id", client.events_last_id.split("-")[1])
