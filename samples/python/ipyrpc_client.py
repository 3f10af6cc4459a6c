#!/usr/bin/python3
"""A Python client for IpyRpc over ZeroMQ, written from docs/PROTOCOL.md alone.

Needs only Debian's python3-zmq and python3-msgpack (run it with /usr/bin/python3):

    /usr/bin/python3 samples/python/ipyrpc_client.py tcp://127.0.0.1:5555           # the demo
    /usr/bin/python3 -i samples/python/ipyrpc_client.py tcp://127.0.0.1:5555 --no-demo

    >>> client.help("add")
    >>> client.call("add", 2, 3)
    >>> client.add(2, 3)            # functions are attributes too
    >>> job = client.submit("print_lines", 20)     # a job: returns at once, runs on if you leave
    >>> job.id, job.refresh()["state"]
    >>> client.attach(job.id).wait()              # from any client, later: output replayed, then live
"""
import hashlib
import hmac
import itertools
import os
import struct
import sys
import time

import msgpack
import zmq

NUMERIC_ARRAY_EXT = 1  # ext type 1: u8 N, N bytes of numpy dtype, raw little-endian elements
_STRUCT_CODES = {"<f8": "d", "<f4": "f", "<i8": "q", "<i4": "i", "<i2": "h", "|i1": "b", "<u8": "Q", "<u4": "I", "<u2": "H"}


class RemoteError(Exception):
    """A failure reported by the server: `code`, `message`, and for exceptions `remote_type`, `stack`, `inner`."""

    def __init__(self, error, function=None):
        self.code = error.get("code", "internal")
        self.message = error.get("message", "")
        self.remote_type = error.get("type")
        self.stack = error.get("stack")
        self.parameter = error.get("parameter")
        self.inner = RemoteError(error["inner"]) if error.get("inner") else None
        self.function = function
        where = f"{function}: " if function else ""
        kind = self.remote_type or self.code
        super().__init__(f"{where}[{kind}] {self.message}")


def _ext_hook(code, data):
    if code == NUMERIC_ARRAY_EXT:
        n = data[0]
        dtype = data[1:1 + n].decode("ascii")
        raw = data[1 + n:]
        fmt = _STRUCT_CODES[dtype]
        return list(struct.unpack("<%d%s" % (len(raw) // struct.calcsize(fmt), fmt), raw))
    if code == -1:
        return msgpack.Timestamp.from_bytes(data)
    return msgpack.ExtType(code, data)


def _unpack(data):
    return msgpack.unpackb(data, raw=False, ext_hook=_ext_hook, strict_map_key=False)


class IpyRpcClient:
    """Connects a DEALER socket, says hello, and fetches every function with its docs."""

    def __init__(self, endpoint, timeout=30.0, output=None, secret=None, name=None):
        self.endpoint = endpoint
        self.timeout = timeout
        self.output = output or self._print_output
        self._ids = itertools.count(1)
        self._socket = zmq.Context.instance().socket(zmq.DEALER)
        self._socket.setsockopt(zmq.LINGER, 0)
        self._socket.connect(endpoint)
        nonce = os.urandom(32) if secret is not None else None
        hello = self._request({"kind": "hello", "versions": [1], **({"nonce": nonce} if nonce else {})})
        self.server = hello.get("agent")
        self.version = hello["versions"][0]
        if "secret" in hello.get("auth", []):
            self._prove_secret(hello, secret, nonce, name)
        self.functions = {f["name"]: f for f in self._request({"kind": "describe"}, result=True)}

    def _prove_secret(self, hello, secret, nonce, name):
        """The shared-secret challenge-response (PROTOCOL.md, Authentication): check the server's proof, send ours."""
        def refused(message):
            return RemoteError({"code": "unauthorized", "message": message}, "connect")
        if secret is None:
            raise refused("The server requires a shared secret: IpyRpcClient(endpoint, secret=...).")
        key = secret.encode("utf-8")
        server_nonce = hello.get("nonce", b"")
        expected = hmac.new(key, b"ipyrpc-server" + nonce + server_nonce, hashlib.sha256).digest()
        if not hmac.compare_digest(expected, hello.get("proof", b"")):
            raise refused("The server's proof does not match this shared secret: the secrets differ, or this is not the server you meant.")
        proof = hmac.new(key, b"ipyrpc-client" + server_nonce + nonce, hashlib.sha256).digest()
        self._request({"kind": "auth"}, [msgpack.packb({"scheme": "secret", "proof": proof, "name": name}, use_bin_type=True)], result=True, function="auth")

    @staticmethod
    def _print_output(stream, text):
        target = sys.stderr if stream == "stderr" else sys.stdout
        target.write(text)
        target.flush()

    def _request(self, header, parts=(), result=False, function=None, output=None):
        output = output or (lambda reply, text: self.output(reply.get("stream", "stdout"), text))
        message_id = next(self._ids)
        header = dict(header, v=1, id=message_id, ser=header.get("ser", "msgpack"))
        self._socket.send_multipart([msgpack.packb(header, use_bin_type=True)] + [bytes(p) for p in parts])
        deadline = time.monotonic() + self.timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not self._socket.poll(int(remaining * 1000)):
                raise TimeoutError(f"no reply to {function or header['kind']} within {self.timeout} s")
            frames = self._socket.recv_multipart()
            reply = msgpack.unpackb(frames[0], raw=False)
            if reply.get("id") != message_id:
                continue  # a late reply to an earlier, abandoned request
            body = frames[1] if len(frames) > 1 else b""
            kind = reply["kind"]
            if kind == "output":
                output(reply, body.decode("utf-8"))
            elif kind == "error":
                raise RemoteError(self._decode(body, reply), function)
            elif result:
                return self._decode(body, reply)
            else:
                return reply

    @staticmethod
    def _decode(body, header):
        if header.get("ser") == "json":
            import json
            return json.loads(body) if body else None
        return _unpack(body) if body else None

    def call(self, function, *args, **kwargs):
        """Calls a function with positional or named arguments (not both); its output prints as it arrives."""
        if args and kwargs:
            raise TypeError("pass arguments either by position or by name")
        arguments = kwargs if kwargs else list(args)
        return self._request({"kind": "call", "fn": function}, [msgpack.packb(arguments, use_bin_type=True)], result=True, function=function)

    def submit(self, function, *args, timeout_ms=None, **kwargs):
        """Queues a call as a job and returns a Job at once; the job runs on if this client goes away."""
        if args and kwargs:
            raise TypeError("pass arguments either by position or by name")
        header = {"kind": "submit", "fn": function}
        if timeout_ms is not None:
            header["timeout_ms"] = timeout_ms
        info = self._request(header, [msgpack.packb(kwargs if kwargs else list(args), use_bin_type=True)], result=True, function=function)
        return Job(self, info)

    def attach(self, job_id):
        """A Job by id: submitted earlier, by this client or another, before a disconnect or a server restart."""
        return Job(self, self.status(job_id))

    def status(self, job_id, output=False):
        """A job's info: state, times, attempts, worker; with output=True the output recorded so far."""
        header = {"kind": "status", "job": job_id}
        if output:
            header["from"] = 0
        return self._request(header, result=True, function="status")

    def jobs(self, state=None, function=None, limit=100):
        """The jobs the server remembers, newest first; filter by state and by a glob on the function name."""
        query = {"limit": limit}
        if state:
            query["state"] = state
        if function:
            query["function"] = function
        return self._request({"kind": "list"}, [msgpack.packb(query)], result=True, function="list")

    def cancel_job(self, job_id):
        """Cancels a job by id; False if it had already finished."""
        return self._request({"kind": "cancel", "job": job_id}, result=True, function="cancel")

    def help(self, function):
        """The signature and docstring of one function, as text."""
        f = self.functions[function]
        params = ", ".join(p["name"] + ": " + p["type"] + (" = " + p["default"] if p.get("default") else "") for p in f["parameters"])
        lines = [f"{f['name']}({params}) -> {f['return_type']}"]
        if f.get("summary"):
            lines.append("    " + f["summary"])
        for p in f["parameters"]:
            lines.append(f"      {p['name']} ({p['type']}): {p.get('doc') or ''}")
        if f.get("returns"):
            lines.append(f"    returns: {f['returns']}")
        return "\n".join(lines)

    def __getattr__(self, name):
        if name.startswith("_") or name not in self.__dict__.get("functions", {}):
            raise AttributeError(name)
        return lambda *args, **kwargs: self.call(name, *args, **kwargs)

    def close(self):
        self._socket.close(0)


class Job:
    """A job on the server: `id`, `info` (as last fetched), `output` received so far; wait for it, cancel it."""

    def __init__(self, client, info):
        self.client = client
        self.info = info
        self.id = info["id"]
        self.output = []
        self._last = 0

    def refresh(self):
        self.info = self.client.status(self.id)
        return self.info

    def wait(self):
        """Replays the job's output so far, then the rest as it comes, then returns its result (or raises RemoteError)."""
        def record(reply, text):
            seq = reply.get("seq")
            if seq is not None:
                if seq <= self._last:
                    return  # seen already, before a reconnect
                self._last = seq
            self.output.append((reply.get("stream", "stdout"), text))
            self.client.output(reply.get("stream", "stdout"), text)

        return self.client._request({"kind": "attach", "job": self.id, "from": self._last}, result=True, function=self.info["function"], output=record)

    def cancel(self):
        return self.client.cancel_job(self.id)


def jobs_demo(endpoint):
    """Submit, leave, come back from another connection, attach; then cancel a long job."""
    first = IpyRpcClient(endpoint, output=lambda stream, text: None)
    job = first.submit("print_lines", 3)
    print(f"submitted {job.info['function']} as job {job.id}: {job.info['state']}")
    print("listed:", any(j["id"] == job.id for j in first.jobs(function="print_*")))
    first.close()

    second = IpyRpcClient(endpoint)
    again = second.attach(job.id)
    print(f"attached to {again.id} from a new connection: {again.info['state']}")
    print("result:", again.wait())
    print("output received:", "".join(text for _, text in again.output).replace("\n", " | "))
    print("state now:", again.refresh()["state"])

    long_job = second.submit("print_lines", 100)
    time.sleep(0.2)
    print("cancelled:", long_job.cancel())
    try:
        long_job.wait()
    except RemoteError as e:
        print(f"waiting raised RemoteError: code={e.code}")
    print("final state:", long_job.refresh()["state"])
    try:
        second.attach("no-such-job")
    except RemoteError as e:
        print(f"unknown job: code={e.code}")
    second.close()


def demo(client):
    print(f"connected to {client.server} at {client.endpoint}, protocol {client.version}")
    print("functions:")
    for name in sorted(client.functions):
        print("  " + client.help(name).replace("\n", "\n  "))
    print("add(2, 3) =", client.call("add", 2, 3))
    print("add(a=40, b=2) =", client.call("add", a=40, b=2))
    print("print_lines(3), live:")
    started = time.monotonic()

    def stamped(stream, text):
        sys.stdout.write(f"  [{stream} +{(time.monotonic() - started) * 1000:.0f} ms] {text}")
        sys.stdout.flush()

    client.output = stamped
    print("print_lines returned", client.call("print_lines", 3))
    try:
        client.call("fail", "raised on the server")
    except RemoteError as e:
        print(f"caught RemoteError: type={e.remote_type} message={e.message}")


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    if "--jobs" in sys.argv:
        jobs_demo(sys.argv[1])
        sys.exit(0)
    if "--secret-check" in sys.argv:
        # For the tests: the right secret connects and calls; a wrong one fails at connect, loudly.
        secret = sys.argv[sys.argv.index("--secret-check") + 1]
        good = IpyRpcClient(sys.argv[1], secret=secret, name="python")
        print("who:", good.call("who"))
        good.close()
        try:
            IpyRpcClient(sys.argv[1], secret=secret + "-wrong")
        except RemoteError as e:
            print("wrong secret:", e.code, e.message)
        try:
            IpyRpcClient(sys.argv[1])
        except RemoteError as e:
            print("no secret:", e.code, e.message)
        sys.exit(0)
    client = IpyRpcClient(sys.argv[1])
    if "--no-demo" not in sys.argv:
        demo(client)
        client.close()
