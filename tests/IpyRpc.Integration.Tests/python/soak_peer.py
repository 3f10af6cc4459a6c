"""The soak's independent peer: the Python client written from docs/PROTOCOL.md alone (samples/python), calling over
ZeroMQ for as long as the soak runs, connecting and leaving over and over, checking every answer.

    soak_peer.py ENDPOINT SECONDS [SECRET NAME]

With a shared secret, every connection proves it and every tenth call asks the server who called (it must be NAME).
Every three seconds or so, a call that prints 3,000 lines stops this whole process (SIGSTOP, libzmq's threads too)
for a second after its fifth line, as a reader that is alive but not reading: it must not be dropped, and must get
every line and the result once it goes on.

Prints "calls N wrong N connections N stops N" (and each wrong answer on stderr); exits 1 when any answer was wrong."""
import os
import random
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ipyrpc_client import IpyRpcClient, RemoteError  # noqa: E402

endpoint, seconds = sys.argv[1], float(sys.argv[2])
secret, name = (sys.argv[3], sys.argv[4]) if len(sys.argv) > 4 else (None, None)
rnd = random.Random(5)
calls = wrong = connections = stops = 0
until = time.monotonic() + seconds
next_stop = time.monotonic() + 1  # one stop every three seconds at most


def check(ok, what):
    global wrong
    if not ok:
        wrong += 1
        print("WRONG", what, file=sys.stderr)


while time.monotonic() < until:
    client = IpyRpcClient(endpoint, output=lambda stream, text: None, secret=secret, name=name)
    connections += 1
    try:
        for _ in range(rnd.randint(20, 120)):
            if time.monotonic() >= until:
                break
            pick = rnd.randrange(100)
            if secret is not None and pick < 10:
                got = client.call("soak.whoami")
                check(got == name, f"the server says {got!r} called, not {name!r}")
            elif pick < 45:
                a, b = rnd.randint(-1000000, 1000000), rnd.randint(-1000000, 1000000)
                got = client.call("soak.add", a, b)
                check(got == a + b, f"{a} + {b} came back {got}")
            elif pick < 65:
                data = os.urandom(rnd.randrange(0, 2048))
                got = client.call("soak.echo", data)
                check(got == data, f"{len(data)} bytes came back as {len(got)} different ones")
            elif pick < 80:
                stopping = time.monotonic() >= next_stop
                if stopping:
                    next_stop = time.monotonic() + 3
                lines, heard = (3000 if stopping else rnd.randint(1, 40)), []

                def hear(stream, text):
                    global stops
                    heard.append(text)
                    if stopping and len(heard) == 5:
                        # Someone else must wake a stopped process: a shell that, a second on and once this process
                        # is stopped, sends it SIGCONT.
                        pid = os.getpid()
                        waker = subprocess.Popen(["sh", "-c", f"sleep 1; until grep -q '^State:.*stopped' /proc/{pid}/status; do sleep 0.1; done; kill -CONT {pid}"])
                        os.kill(pid, signal.SIGSTOP)
                        waker.wait()
                        stops += 1

                got = client.invoke("soak.talk", [lines], output=hear)
                expected = "".join(f"soak line {i}\n" for i in range(lines))
                check(got == lines and "".join(heard) == expected, f"{lines} lines: returned {got}, heard {len(''.join(heard))} characters against {len(expected)}")
            elif pick < 90:
                message = f"soak failure {rnd.randrange(1 << 30)}"
                try:
                    client.call("soak.fail", message)
                    check(False, "no exception")
                except RemoteError as e:
                    check(e.remote_type == "System.InvalidOperationException" and e.message == message, f"{e.remote_type}: {e.message}")
            else:
                count = rnd.randrange(0, 3000)
                items = list(client.stream("soak.count", count))
                check(items == list(range(count)), f"{len(items)} items of {count}")
            calls += 1
    finally:
        client.close()

print(f"calls {calls} wrong {wrong} connections {connections} stops {stops}")
sys.exit(1 if wrong else 0)
