#!/usr/bin/python3
"""Python RPC peers for the IpyRpc benchmark: Pyro4 and RPyC, each calling add(2, 3) in a loop.

    peers.py pyro4|rpyc --warmup W --calls N     start that peer's server as a subprocess, then
                                                 call it N times; print JSON p50_us, p99_us, calls_per_s
    peers.py serve-pyro4|serve-rpyc PORT         the server side (prints READY when listening)
"""
import json
import socket
import subprocess
import sys
import time


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve_pyro4(port):
    import Pyro4

    @Pyro4.expose
    class Calculator:
        def add(self, a, b):
            return a + b

    daemon = Pyro4.Daemon(host="127.0.0.1", port=port)
    daemon.register(Calculator(), "calculator")
    print("READY", flush=True)
    daemon.requestLoop()


def serve_rpyc(port):
    import rpyc
    from rpyc.utils.server import ThreadedServer

    class Calculator(rpyc.Service):
        def exposed_add(self, a, b):
            return a + b

    server = ThreadedServer(Calculator, hostname="127.0.0.1", port=port, protocol_config={"allow_public_attrs": True})
    print("READY", flush=True)
    server.start()


def client(peer, port):
    if peer == "pyro4":
        import Pyro4
        proxy = Pyro4.Proxy("PYRO:calculator@127.0.0.1:%d" % port)
        return lambda: proxy.add(2, 3)
    import rpyc
    connection = rpyc.connect("127.0.0.1", port)
    return lambda: connection.root.add(2, 3)


def run(peer, warmup, calls):
    port = free_port()
    server = subprocess.Popen([sys.executable, __file__, "serve-" + peer, str(port)], stdout=subprocess.PIPE, text=True)
    try:
        if server.stdout.readline().strip() != "READY":
            raise RuntimeError(peer + " server did not start")
        call = client(peer, port)
        for _ in range(warmup):
            assert call() == 5
        times = []
        started = time.perf_counter()
        for _ in range(calls):
            t = time.perf_counter()
            call()
            times.append(time.perf_counter() - t)
        elapsed = time.perf_counter() - started
        times.sort()
        result = {"p50_us": times[len(times) // 2] * 1e6, "p99_us": times[min(len(times) - 1, int(len(times) * 0.99))] * 1e6,
                  "calls_per_s": calls / elapsed, "error": None}
    except Exception as e:  # report, do not crash the harness
        result = {"p50_us": 0, "p99_us": 0, "calls_per_s": 0, "error": "%s: %s" % (type(e).__name__, e)}
    finally:
        server.kill()
        server.wait()
    print(json.dumps(result))


def main():
    mode = sys.argv[1]
    if mode == "serve-pyro4":
        serve_pyro4(int(sys.argv[2]))
    elif mode == "serve-rpyc":
        serve_rpyc(int(sys.argv[2]))
    else:
        args = dict(zip(sys.argv[2::2], sys.argv[3::2]))
        run(mode, int(args.get("--warmup", "200")), int(args.get("--calls", "2000")))


if __name__ == "__main__":
    main()
