#!/usr/bin/python3
"""A Python client for IpyRpc over ZeroMQ, written from docs/PROTOCOL.md alone.

Needs only Debian's python3-zmq and python3-msgpack (run it with /usr/bin/python3):

    /usr/bin/python3 samples/python/ipyrpc_client.py tcp://127.0.0.1:5555           # the demo
    /usr/bin/python3 -i samples/python/ipyrpc_client.py tcp://127.0.0.1:5555 --no-demo

Or install it (offline, from this folder) and import it anywhere:

    /usr/bin/python3 -m pip install --no-index --no-build-isolation --no-deps samples/python

    >>> client.help("add")
    >>> client.call("add", 2, 3)
    >>> client.add(2, 3)            # functions are attributes too; client.math.add(...) for dotted names
    >>> help(client.add)            # the remote docstring and signature (client.add? in IPython); dir(client) lists them
    >>> client.fail("x")            # RemoteError; its traceback shows the remote one under the local one
    >>> job = client.submit("print_lines", 20)     # a job: returns at once, runs on if you leave
    >>> job.id, job.refresh()["state"]
    >>> client.attach(job.id).wait()              # from any client, later: output replayed, then live (progress=print for reports)
    >>> for item in client.stream("count", 10): ...   # a streaming function's items, with flow control
    >>> for item in client.submit("count", 10).items(): ...   # a stream as a job: its items, now or from any client later
    >>> client.invoke("solve", [8], progress=print)   # progress reports as they happen
    >>> client.export("shout", str.upper)             # the server may call this client back
    >>> client.subscribe("chat.*"); client.poll(1.0); client.events   # pushed events (after a reconnect, those missed first)
    >>> p = client.call_pointer("matrix", 10_000_000, 8)   # the result stays where it was computed
    >>> client.fetch(p, 0, 10)          # the first 10 rows, straight from the holder (a numpy array)
    >>> client.call("sum", p)           # a pointer as an argument: resolved where the function runs
    >>> client.release(p)

Without ZeroMQ (or msgpack), over a server's HTTP endpoint with the standard library alone:

    >>> client = JsonRpcClient("http://127.0.0.1:7777")   # the same calls, help, jobs, pointers
    >>> for name, payload in client.events("chat.*"): ...   # events, from the server's event stream (/events)

Arrays arrive as numpy arrays when numpy is installed (Debian's python3-numpy), nested lists
otherwise; numpy arrays can be passed as arguments. Results (and a stream's items) come in Python's
types where the function's schema names them: DateOnly a date, TimeOnly a time, DateTime and
DateTimeOffset a datetime, TimeSpan a timedelta, decimal a Decimal, Int128 and BigInteger an int.
Dates, times, datetimes, timedeltas, UUIDs, Decimals and integers of any size can be passed as
arguments (past 64 bits, as their text: MessagePack has no wider integer).

One client can be shared: calls made while a stream is being read, and calls from several threads,
go over its one connection and each gets its own answers. An export the server calls runs on whichever
thread was reading the connection, without holding it: other threads' calls go on meanwhile, and what the
export prints (stdout and stderr, a line at a time) goes back to the server as that call's output while
other threads print as usual. `on_event` is called for one event at a time, in the order they came.
"""
import collections
import datetime
import decimal
import hashlib
import hmac
import itertools
import math
import os
import re
import struct
import sys
import threading
import time
import uuid

try:  # the ZeroMQ client needs both; JsonRpcClient needs neither
    import msgpack
    import zmq
except ImportError:  # pragma: no cover
    msgpack = zmq = None

try:
    import numpy
except ImportError:  # arrays then arrive as lists
    numpy = None
try:
    import pandas
except ImportError:  # data frames then arrive as their pandas-shaped dicts
    pandas = None

NUMERIC_ARRAY_EXT = 1  # ext type 1: u8 N, N bytes of numpy dtype, raw little-endian elements
ND_ARRAY_EXT = 2       # ext type 2: u8 N, dtype, u8 rank, rank x u32 shape, raw little-endian elements in C order
_STRUCT_CODES = {"<f8": "d", "<f4": "f", "<i8": "q", "<i4": "i", "<i2": "h", "|i1": "b", "<u8": "Q", "<u4": "I", "<u2": "H", "|u1": "B"}


def _nest(flat, shape):
    """Row-major flat values as nested lists of the given shape."""
    if len(shape) <= 1:
        return list(flat)
    step = len(flat) // shape[0] if shape[0] else 0
    return [_nest(flat[i * step:(i + 1) * step], shape[1:]) for i in range(shape[0])]


class RemoteError(Exception):
    """A failure reported by the server: `code`, `message`, and for exceptions `remote_type`, `stack`, `inner`.

    For `unavailable` (the server's job store is out of reach; the call was not queued), `job` is the id the call
    may have been queued as after all, to look up with `status(id)` once the store is back; None when it certainly was not.
    """

    def __init__(self, error, function=None):
        self.code = error.get("code", "internal")
        self.message = error.get("message", "")
        self.remote_type = error.get("type")
        self.stack = error.get("stack")
        self.parameter = error.get("parameter")
        self.job = error.get("job")
        self.inner = RemoteError(error["inner"]) if error.get("inner") else None
        self.function = function
        where = f"{function}: " if function else ""
        kind = self.remote_type or self.code
        super().__init__(f"{where}[{kind}] {self.message}")
        # A traceback printed here (the REPL, IPython, an uncaught error) shows the remote one under it.
        if self.stack and hasattr(self, "add_note"):
            self.add_note("Remote traceback (" + (self.remote_type or self.code) + "):\n" + self.stack.rstrip())
        cause = self.inner
        while cause is not None and hasattr(self, "add_note"):
            self.add_note(f"Caused by [{cause.remote_type or cause.code}] {cause.message}" + ("\n" + cause.stack.rstrip() if cause.stack else ""))
            cause = cause.inner


class ConnectionClosed(ConnectionError):
    """The server closed the connection: `reason` (`server_stopping`, `closed_by_server`, `unauthorized`...) and why.

    `not_delivered` is True when the request that was waiting had not been read by the server (it did not run); a
    request that may have run says so. The client says hello again (and proves its secret) at its next request.
    """

    def __init__(self, reason, message, not_delivered=False):
        self.reason = reason
        self.not_delivered = not_delivered
        fate = "; the request was never read by the server and did not run" if not_delivered else ""
        super().__init__(f"the server closed the connection ({reason}): {message}{fate}")


class _Default:
    """A parameter's default as the server wrote it (C# source text); shown in signatures, never sent."""

    def __init__(self, text):
        self.text = text

    def __repr__(self):
        return self.text


class RemoteFunction:
    """A remote function as a Python callable: `help(f)`, `f?` in IPython and `inspect.signature(f)` show its remote docs."""

    def __init__(self, client, descriptor):
        import inspect
        self._client = client
        self.descriptor = descriptor
        self.__name__ = descriptor["name"].rsplit(".", 1)[-1]
        self.__qualname__ = descriptor["name"]
        parameters = []
        for p in descriptor["parameters"]:
            if p.get("params"):  # a params array: the positional arguments past the others, as *args
                parameters.append(inspect.Parameter(p["name"], inspect.Parameter.VAR_POSITIONAL, annotation=p["type"]))
                continue
            default = _Default(p["default"]) if p.get("optional") and p.get("default") is not None else (_Default("...") if p.get("optional") else inspect.Parameter.empty)
            parameters.append(inspect.Parameter(p["name"], inspect.Parameter.POSITIONAL_OR_KEYWORD, default=default, annotation=p["type"]))
        self.__signature__ = inspect.Signature(parameters, return_annotation=descriptor.get("return_type", "void"))
        self.__doc__ = self._docstring(descriptor)

    @staticmethod
    def _docstring(f):
        lines = []
        if f.get("summary"):
            lines.append(f["summary"])
        if f.get("remarks"):
            lines += ["", f["remarks"]]
        if f["parameters"]:
            lines += ["", "Parameters", "----------"]
            for p in f["parameters"]:
                lines.append(f"{p['name']} : {p['type']}" + (", default " + p["default"] if p.get("default") else ""))
                if p.get("doc"):
                    lines.append("    " + p["doc"])
        if f.get("returns") or f.get("return_type", "void") != "void":
            lines += ["", "Returns", "-------", f.get("return_type", "")]
            if f.get("returns"):
                lines.append("    " + f["returns"])
        if f.get("exceptions"):
            lines += ["", "Raises", "------"]
            for e in f["exceptions"]:
                lines += [e["type"], "    " + e["description"]]
        if f.get("stream"):
            lines += ["", "Streams its items: calling it returns a generator of them as they are produced."]
        lines += ["", f"Runs remotely as {f['name']}; a remote failure raises RemoteError with the remote traceback."]
        return "\n".join(lines)

    def __call__(self, *args, **kwargs):
        if self.descriptor.get("stream"):
            # As a Python generator function: a generator of the items as the function produces them.
            return self._client.stream(self.descriptor["name"], *args, **kwargs)
        return self._client.call(self.descriptor["name"], *args, **kwargs)

    def __repr__(self):
        return f"<remote function {self.descriptor['name']}{self.__signature__}>"


class _Namespace:
    """Functions under a dotted prefix: `client.math.linear.solve(...)`."""

    def __init__(self, client, prefix):
        self._client = client
        self._prefix = prefix

    def __getattr__(self, name):
        if name.startswith("_"):
            raise AttributeError(name)
        return self._client._resolve(self._prefix + "." + name)

    def __dir__(self):
        return self._client._children(self._prefix)

    def __repr__(self):
        return f"<remote namespace {self._prefix}: {', '.join(self.__dir__())}>"


def _ext_hook(code, data):
    if code == NUMERIC_ARRAY_EXT:
        n = data[0]
        dtype = data[1:1 + n].decode("ascii")
        raw = data[1 + n:]
        if numpy is not None:
            return numpy.frombuffer(raw, dtype=dtype).copy()
        fmt = _STRUCT_CODES[dtype]
        return list(struct.unpack("<%d%s" % (len(raw) // struct.calcsize(fmt), fmt), raw))
    if code == ND_ARRAY_EXT:
        n = data[0]
        dtype = data[1:1 + n].decode("ascii")
        rank = data[1 + n]
        shape = list(struct.unpack("<%dI" % rank, data[2 + n:2 + n + 4 * rank]))
        raw = data[2 + n + 4 * rank:]
        if numpy is not None:
            return numpy.frombuffer(raw, dtype=dtype).reshape(shape).copy()
        fmt = _STRUCT_CODES[dtype]
        return _nest(struct.unpack("<%d%s" % (len(raw) // struct.calcsize(fmt), fmt), raw), shape)
    return msgpack.ExtType(code, data)  # (the timestamp, -1, is msgpack's own: see _unpack)


def _frame_column(column, dtype=None, cells=None):
    """One column of the pandas shape as a numpy array: a raw block (MessagePack) or a list of cells (JSON)."""
    dtype = dtype or column["dtype"]
    data = column["data"] if cells is None else cells
    if dtype == "|O":
        return numpy.array(data, dtype=object)
    if isinstance(data, (bytes, bytearray)):
        return numpy.frombuffer(data, dtype=dtype).copy()
    if dtype.startswith("<M8"):
        return pandas.to_datetime(data, utc=True).tz_localize(None).values
    return numpy.array(data, dtype=dtype)


def _to_pandas(shape):
    """The seeds' pandas shape ({"type": "pandas", "data": {row_index, columns, data}}) as a pandas.DataFrame."""
    d = shape["data"]
    index = d.get("row_index")
    names = d.get("columns", [])
    if "dtypes" in d:  # JSON: data is a record array, one list per row
        rows = d.get("data", [])
        columns = [_frame_column(None, dtype, [r[i] for r in rows]) for i, dtype in enumerate(d["dtypes"])]
    else:
        columns = [_frame_column(c) for c in d.get("data", [])]
    frame = pandas.DataFrame(dict(zip(names, columns)), columns=names)
    if index is not None:
        frame.index = pandas.Index(_frame_column(index), name=index.get("name"))
    return frame


def _frame_object_hook(value):
    if pandas is not None and value.get("type") == "pandas" and isinstance(value.get("data"), dict):
        return _to_pandas(value)
    return value


def _json_object_hook(value):
    """JSON objects as the MessagePack path gives them: the seeds' ndarray object a numpy array (with numpy), a data frame."""
    if numpy is not None and value.get("type") == "ndarray" and isinstance(value.get("shape"), list) and "data" in value:
        try:
            return numpy.array(value["data"], dtype=value.get("dtype")).reshape(value["shape"])
        except (ValueError, TypeError):
            return value
    return _frame_object_hook(value)


def _unpack(data):
    # timestamp=3: a DateTime (the timestamp extension) arrives as an aware datetime in UTC, not msgpack.Timestamp.
    return msgpack.unpackb(data, raw=False, ext_hook=_ext_hook, strict_map_key=False, object_hook=_frame_object_hook, timestamp=3)


def _from_pandas(frame):
    """A pandas.DataFrame as the pandas shape, each column a raw block (text: a list of strings)."""
    def column(values, name=None, with_name=False):
        values = numpy.asarray(values)
        if values.dtype.kind in "OUS":
            out = {"dtype": "|O", "data": [None if (v is None or (isinstance(v, float) and v != v)) else str(v) for v in values]}
        else:
            if values.dtype.kind == "M":
                values = values.astype("<M8[ns]")
            out = {"dtype": values.dtype.str, "data": numpy.ascontiguousarray(values).tobytes()}
        if with_name:
            out = {"name": name, **out}
        return out
    return {"type": "pandas", "data": {
        "row_index": column(frame.index.values, frame.index.name, with_name=True),
        "columns": [str(c) for c in frame.columns],
        "data": [column(frame[c].values) for c in frame.columns]}}


def _pack_default(value):
    """numpy arrays go as the protocol's raw blocks: ext 1 (one dimension) or ext 2 (any rank), C order, little-endian."""
    if numpy is not None and isinstance(value, numpy.ndarray):
        array = numpy.ascontiguousarray(value)
        if array.dtype.byteorder == ">":
            array = array.astype(array.dtype.newbyteorder("<"))
        dtype = array.dtype.str.encode("ascii")
        if array.dtype.str not in _STRUCT_CODES:
            raise TypeError(f"arrays of {array.dtype} have no IpyRpc encoding (use one of {', '.join(_STRUCT_CODES)})")
        if array.ndim == 1:
            return msgpack.ExtType(NUMERIC_ARRAY_EXT, bytes([len(dtype)]) + dtype + array.tobytes())
        return msgpack.ExtType(ND_ARRAY_EXT, bytes([len(dtype)]) + dtype + bytes([array.ndim]) + struct.pack("<%dI" % array.ndim, *array.shape) + array.tobytes())
    if numpy is not None and isinstance(value, numpy.generic):
        return value.item()
    if pandas is not None and isinstance(value, pandas.DataFrame):
        return _from_pandas(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)  # past what MessagePack holds (64 bits): its text, which Int128 and BigInteger read
    plain = _plain_scalar(value)
    if plain is not None:
        return plain
    raise TypeError(f"cannot send {type(value).__name__}")


def _plain_scalar(value):
    """The text (or number) the protocol gives dates, times, durations, UUIDs and decimals; None for anything else.
    DateTime, DateTimeOffset, DateOnly and TimeOnly read ISO 8601 text, TimeSpan a number of seconds, Guid its text."""
    if isinstance(value, (datetime.datetime, datetime.date, datetime.time)):
        return value.isoformat()
    if isinstance(value, datetime.timedelta):
        return value.total_seconds()
    if isinstance(value, (uuid.UUID, decimal.Decimal)):
        return str(value)
    return None


def _pack(value):
    return msgpack.packb(value, use_bin_type=True, default=_pack_default)


def _timedelta(text):
    """A TimeSpan's "c" text, [-][d.]hh:mm:ss[.fffffff], as a timedelta."""
    m = re.fullmatch(r"(-)?(?:(\d+)\.)?(\d+):(\d+):(\d+(?:\.\d+)?)", text)
    if m is None:
        raise ValueError(f"{text!r} is not a time span")
    span = datetime.timedelta(days=int(m[2] or 0), hours=int(m[3]), minutes=int(m[4]), seconds=float(m[5]))
    return -span if m[1] else span


def _when(parse):
    return lambda value: parse(value) if isinstance(value, str) else value


class _JsonFloat(float):
    """A JSON number with a fraction or exponent: a float that keeps its text, so a decimal is read from it exactly."""
    __slots__ = ("text",)

    def __new__(cls, text):
        value = super().__new__(cls, text)
        value.text = text
        return value


def _decimal(value):
    if isinstance(value, _JsonFloat):
        return decimal.Decimal(value.text)  # "25.00" stays 25.00, every digit kept
    return decimal.Decimal(str(value)) if isinstance(value, (str, int, float)) and not isinstance(value, bool) else value


def _floats(value):
    """`value` with every _JsonFloat left a plain float (after _typed has read the decimals it wanted exactly)."""
    if isinstance(value, _JsonFloat):
        return float(value)
    if isinstance(value, list):
        return [_floats(v) for v in value]
    if isinstance(value, dict) and not isinstance(value, RemotePointer):
        return {k: _floats(v) for k, v in value.items()}
    return value


def _as_float(value):
    return float(value) if isinstance(value, int) and not isinstance(value, bool) else value


# Values whose wire form is text (or a number) that Python has a type for, by the schema's "x-ipyrpc" name.
_PYTHON_TYPES = {
    "Double": _as_float, "Single": _as_float, "Half": _as_float,  # JSON writes 8.0 as 8
    "DateOnly": _when(datetime.date.fromisoformat),
    "TimeOnly": _when(datetime.time.fromisoformat),
    "DateTime": _when(datetime.datetime.fromisoformat),  # (a MessagePack timestamp is a datetime already)
    "DateTimeOffset": _when(datetime.datetime.fromisoformat),
    "TimeSpan": _when(_timedelta),
    "Decimal": _decimal,
    "Int128": _when(int), "UInt128": _when(int), "BigInteger": _when(int),
}


_NEEDS = {}  # id(schema node) -> (node, whether a value of it can hold something _typed converts)


def _needs(schema, depth=0):
    """Whether a value of `schema` can hold a date, time, duration, decimal or wide integer: containers that cannot (a
    list of a million doubles) are not walked. Remembered per node; the node is kept so its id is not reused."""
    if not isinstance(schema, dict) or depth > 64:
        return False
    known = _NEEDS.get(id(schema))
    if known is not None and known[0] is schema:
        return known[1]
    kind = schema.get("x-ipyrpc")
    children = [schema.get("items"), schema.get("additionalProperties"), schema.get("x-ipyrpc-key")]
    children += schema.get("anyOf", []) + schema.get("allOf", []) + schema.get("prefixItems", [])
    children += list((schema.get("properties") or {}).values())
    needs = (kind in _PYTHON_TYPES and kind not in ("Double", "Single", "Half")) or any(_needs(c, depth + 1) for c in children)
    _NEEDS[id(schema)] = (schema, needs)
    return needs


def _typed(value, schema, depth=0):
    """`value` with dates, times, durations, decimals and wide integers as Python's own types, where `schema` (a
    function's return or item schema) says what they are. Anything it cannot convert stays as it came."""
    if value is None or not isinstance(schema, dict) or depth > 64:
        return value
    kind = schema.get("x-ipyrpc")
    try:
        if kind in _PYTHON_TYPES:
            return _PYTHON_TYPES[kind](value)
        if not _needs(schema):
            return value  # nothing inside to convert: not walked
        if kind is None and isinstance(schema.get("allOf"), list) and schema["allOf"]:
            return _typed(value, schema["allOf"][0], depth + 1)  # a documented member wraps its type's node
        if kind == "nullable":
            inner = next((s for s in schema.get("anyOf", []) if s.get("type") != "null"), None)
            return _typed(value, inner, depth + 1)
        if kind == "list" and isinstance(value, list):
            return [_typed(v, schema.get("items"), depth + 1) for v in value]
        if kind == "tuple" and isinstance(value, (list, tuple)) and isinstance(schema.get("prefixItems"), list):
            return [_typed(v, s, depth + 1) for v, s in zip(value, schema["prefixItems"])] + list(value[len(schema["prefixItems"]):])
        if kind == "map" and isinstance(value, dict):
            keys, values = schema.get("x-ipyrpc-key"), schema.get("additionalProperties")
            return {_typed(k, keys, depth + 1): _typed(v, values, depth + 1) for k, v in value.items()}
        if kind == "object" and isinstance(value, dict) and isinstance(schema.get("properties"), dict):
            properties = schema["properties"]
            return {k: _typed(v, properties.get(k), depth + 1) for k, v in value.items()}
    except (ValueError, TypeError, ArithmeticError):
        pass
    return value


def _job_query(state, function, limit):
    """A job list's filter (the `list` message's map, rpc.jobs' params)."""
    query = {"limit": limit}
    if state:
        query["state"] = state
    if function:
        query["function"] = function
    return query


def _json_default(value):
    if numpy is not None and isinstance(value, (numpy.ndarray, numpy.generic)):
        return value.tolist()
    plain = _plain_scalar(value)
    if plain is not None:
        return plain
    raise TypeError(f"cannot send {type(value).__name__} as JSON")


class RemotePointer(dict):
    """A result that stayed where it was computed (docs/POINTERS.md): the seeds' map, as a dict.

    Fetch it (or rows of it) with client.fetch, pass it as an argument, release it with client.release.
    """

    @property
    def shape(self):
        return self.get("shape")

    @property
    def endpoint(self):
        return f"tcp://{self['host']}:{self['port']}" if self["protocol"] == "zmq" else None

    def __repr__(self):
        shape = f" [{'x'.join(str(s) for s in self['shape'])}]" if self.get("shape") else ""
        return f"<pointer to {self.get('value_type')}{shape} ({self.get('bytes')} bytes) at {self['protocol']}://{self['host']}:{self['port']}{self['path']}>"


def _as_pointer(value):
    """A pointer given as a plain dict (one decoded from JSON, or copied) works as one the client made."""
    if isinstance(value, RemotePointer):
        return value
    if not isinstance(value, dict) or value.get("type") != "ipyrpc_data_pointer":
        raise TypeError(f"expected a pointer (a dict with type 'ipyrpc_data_pointer'), not {type(value).__name__}")
    return RemotePointer(value)


class _ThreadRouted:
    """Stands in for sys.stdout or sys.stderr: a thread running an export writes to its call's output; any other thread
    writes where the stream wrote before."""

    _local = threading.local()

    def __init__(self, stream, underlying):
        self._stream, self._underlying = stream, underlying

    def write(self, text):
        sink = getattr(_ThreadRouted._local, "sink", None)
        if sink is None:
            return self._underlying.write(text)
        sink.write(self._stream, text)
        return len(text)

    def flush(self):
        sink = getattr(_ThreadRouted._local, "sink", None)
        if sink is None:
            self._underlying.flush()
        else:
            sink.flush(self._stream)

    def __getattr__(self, name):
        return getattr(self._underlying, name)


class _CallOutput:
    """While an export runs on this thread: its stdout and stderr go to `send(stream, text)`, a line at a time."""

    _install = threading.Lock()

    def __init__(self, send):
        self._send, self._pending = send, {"stdout": "", "stderr": ""}

    def write(self, stream, text):
        self._pending[stream] += text
        if "\n" in self._pending[stream]:
            complete, _, rest = self._pending[stream].rpartition("\n")
            self._pending[stream] = rest
            self._send(stream, complete + "\n")

    def flush(self, stream):
        if self._pending[stream]:
            text, self._pending[stream] = self._pending[stream], ""
            self._send(stream, text)

    def __enter__(self):
        with _CallOutput._install:  # once, and again if the program replaced the stream since
            if not isinstance(sys.stdout, _ThreadRouted):
                sys.stdout = _ThreadRouted("stdout", sys.stdout)
            if not isinstance(sys.stderr, _ThreadRouted):
                sys.stderr = _ThreadRouted("stderr", sys.stderr)
        self._outer = getattr(_ThreadRouted._local, "sink", None)  # an export that calls the server, which calls back
        _ThreadRouted._local.sink = self
        return self

    def __exit__(self, *exc):
        _ThreadRouted._local.sink = self._outer
        self.flush("stdout")
        self.flush("stderr")
        return False


class _RemoteFunctions:
    """What both clients share: the server's functions as attributes (dotted names as namespaces), `help`, completion."""

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
        if f.get("input_serialization"):
            lines.append(f"    accepts {'JSON' if f['input_serialization'] == 'json' else 'MessagePack'} arguments only")
        return "\n".join(lines)

    def _resolve(self, name):
        functions = self.__dict__.get("functions", {})
        if name in functions:
            return RemoteFunction(self, functions[name])
        if any(f.startswith(name + ".") for f in functions):
            return _Namespace(self, name)
        raise AttributeError(f"the server has no function or namespace named {name!r}")

    def _children(self, prefix):
        start = prefix + "." if prefix else ""
        return sorted({f[len(start):].split(".", 1)[0] for f in self.__dict__.get("functions", {}) if f.startswith(start)})

    def __getattr__(self, name):
        if name.startswith("_"):
            raise AttributeError(name)
        return self._resolve(name)

    def __dir__(self):
        """Tab completion lists the remote functions (and namespaces) beside the client's own members."""
        return sorted(set(super().__dir__()) | set(self._children("")))



class IpyRpcClient(_RemoteFunctions):
    """Connects a DEALER socket, says hello, and fetches every function with its docs."""

    def __init__(self, endpoint, timeout=30.0, output=None, secret=None, name=None):
        if zmq is None or msgpack is None:
            raise ImportError("IpyRpcClient needs pyzmq and msgpack (Debian: python3-zmq python3-msgpack); "
                              "JsonRpcClient talks to a server's HTTP endpoint with the standard library alone")
        self.endpoint = endpoint
        self.timeout = timeout
        self._secret = secret
        self._name = name
        self.output = output or self._print_output
        self._ids = itertools.count(1)
        self._socket = zmq.Context.instance().socket(zmq.DEALER)
        self._socket.setsockopt(zmq.LINGER, 0)
        self._socket.connect(endpoint)
        self.exports = {}                             # name -> callable the server may call
        self.events = collections.deque(maxlen=10000)  # (name, payload) pushed by the server, oldest dropped
        self.on_event = None                          # or a callable(name, payload), instead of the deque
        self.events_dropped_by_server = 0
        self.events_missed = []                       # (pattern, reason, message): what a reconnect could not replay
        self._subscriptions = {}                      # pattern -> the number of the event it started after (or None)
        self._event_epoch = None                      # the server's event history: its epoch and the last number heard
        self._event_last = 0
        self._replaying = None                        # events read while subscribing again, delivered once all are in
        self._connected = False
        # One socket, shared: requests may overlap (a call made while a stream is read, or from several threads). Each
        # request in flight has an inbox; whoever reads the socket puts what it reads in the inbox of the request it
        # answers. The lock keeps the socket to one thread at a time (ZeroMQ sockets are not thread-safe).
        self._lock = threading.RLock()
        self._inboxes = {}
        # Exports and event callbacks run without the lock (a slow one must not stop other threads' calls); events reach
        # on_event one at a time, in the order they came, through this queue.
        self._pending_events = collections.deque()
        self._delivering = threading.Lock()
        with self._lock:
            self._connect()

    def _connect(self):
        """Says hello (proving the secret), fetches the functions and renews subscriptions: at first, and at the first
        request after the server closed the connection (a restarted server knows nothing of this client)."""
        deadline = time.monotonic() + self.timeout
        while True:
            self._connected = True  # the handshake's own requests go out as they are
            try:
                hello, nonce = self._hello(deadline)
                self.server = hello.get("agent")
                self.version = hello["versions"][0]
                if "secret" in hello.get("auth", []):
                    self._prove_secret(hello, self._secret, nonce, self._name)
                self.functions = {f["name"]: f for f in self._request({"kind": "describe"}, result=True)}
                self._result_schemas = {}
                self._resubscribe()
                return
            except ConnectionClosed as closed:
                self._connected = False
                # A server still stopping answers with its close: the next one at this address will take the hello.
                if closed.reason != "server_stopping" or time.monotonic() >= deadline:
                    raise
                time.sleep(0.2)
            except BaseException:
                self._connected = False
                raise

    def _subscribe(self, pattern, resume=None, renewing=False):
        """Subscribes (`renewing` it after a reconnect, asking to resume after the event id `resume`); returns the names
        it matches. A server that keeps a history of its events says where the subscription starts (part 1: {"start": id,
        "missed"?}); the events it replays come before its answer."""
        parts = [msgpack.packb({"resume": resume}, use_bin_type=True)] if resume else []
        reply = self._request({"kind": "subscribe", "fn": pattern}, parts, function="subscribe")
        replied = reply.get("_parts", [])
        names = self._decode(replied[0], reply) if replied else []
        resumed = self._decode(replied[1], reply) if len(replied) > 1 else None
        start = None
        if resumed and "-" in resumed.get("start", ""):
            epoch, number = resumed["start"].rsplit("-", 1)
            start = int(number)
            if epoch != self._event_epoch:  # the first subscription, or a server that is not the one heard before
                self._event_epoch, self._event_last = epoch, start
        else:
            self._event_epoch = None  # a server that numbers no events: nothing to resume after
        if renewing:
            missed = (resumed or {}).get("missed")
            if resumed is None:
                missed = {"reason": "not_kept", "message": "The server keeps no history of its events: events published while this client was away are lost."}
            elif resume is None:
                missed = {"reason": "not_kept", "message": "The server this client was on kept no history of its events: events published while it was away may be lost."}
            if missed:
                import warnings
                self.events_missed.append((pattern, missed.get("reason"), missed.get("message")))
                warnings.warn(f"{pattern}: {missed.get('message')}", RuntimeWarning, stacklevel=3)
        self._subscriptions[pattern] = start
        return names

    def _resubscribe(self):
        """After a reconnect: every pattern again, each asking for the events published after the last one this client
        heard (or after it subscribed, if later). What arrives meanwhile (replays and live events, which a pattern
        subscribed again first may hear before another's replay) is delivered once all are answered, in number order,
        each event once."""
        resume = {pattern: f"{self._event_epoch}-{max(start, self._event_last)}"
                  if self._event_epoch is not None and start is not None else None
                  for pattern, start in self._subscriptions.items()}
        self._replaying = []
        try:
            for pattern in sorted(resume):
                self._subscribe(pattern, resume[pattern], renewing=True)
        finally:
            arrived, self._replaying = self._replaying, None
        seen = set()
        for number, message, payload in sorted(arrived, key=lambda a: a[0]):
            if number in seen:
                continue
            seen.add(number)
            self._event(message, payload)

    def _hello(self, deadline):
        """Says hello until answered: one said to a server in its last moments is lost with it, and ZeroMQ takes the
        next to whichever server listens at the address by then. Each wait is twice the last (from a second), so a server
        slow to answer is not asked again faster than it answers. Returns the answer and the nonce it answers."""
        patience = 1.0
        while True:
            nonce = os.urandom(32) if self._secret is not None else None
            try:
                wait = max(0.05, min(patience, deadline - time.monotonic()))
                patience *= 2
                return self._request({"kind": "hello", "versions": [1], **({"nonce": nonce} if nonce else {})}, wait=wait), nonce
            except TimeoutError:
                if time.monotonic() >= deadline:
                    raise TimeoutError(f"no reply to hello within {self.timeout} s") from None

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

    def _send(self, header, parts=()):
        header = dict(header, v=1, ser=header.get("ser", "msgpack"))
        frames = [msgpack.packb(header, use_bin_type=True)] + [bytes(p) for p in parts]
        with self._lock:
            self._socket.send_multipart(frames)

    def _open(self, header, parts=()):
        """Sends a request with a new id and opens its inbox; returns the id. Close the inbox with _done(id)."""
        with self._lock:
            message_id = next(self._ids)
            self._inboxes[message_id] = collections.deque()
            try:
                self._send(dict(header, id=message_id), parts)
            except BaseException:
                del self._inboxes[message_id]
                raise
            return message_id

    def _done(self, message_id):
        with self._lock:
            self._inboxes.pop(message_id, None)

    def _receive(self, message_id, deadline, what):
        """The next message for request `message_id`: from its inbox, else from the socket. Whatever else is read on the
        way goes to its own request's inbox, or (calls to this client's exports, events, pings) is served here. The lock
        is let go between short waits, so other threads can send and read their own answers meanwhile."""
        while True:
            with self._lock:
                inbox = self._inboxes.get(message_id)
                if inbox:
                    return inbox.popleft()
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"no reply to {what} within {self.timeout} s")
                if not self._socket.poll(max(1, int(min(remaining, 0.02) * 1000))):
                    continue
                frames = self._socket.recv_multipart()
                message, body = msgpack.unpackb(frames[0], raw=False), (frames[1] if len(frames) > 1 else b"")
                message["_parts"] = frames[1:]
                kind, to = message.get("kind"), message.get("id")
                if kind == "close":
                    # Every request waiting learns it, each with whether the server had read it; the next says hello anew.
                    self._connected = False
                    for other, box in self._inboxes.items():
                        if other != message_id:
                            box.append((message, body))
                    return message, body
                if to == message_id and kind not in ("call", "event", "ping"):
                    return message, body
                if kind not in ("call", "event", "ping") and to in self._inboxes:
                    self._inboxes[to].append((message, body))
                    continue
            self._unsolicited(message, body)  # outside the lock; a late reply to an abandoned request is dropped

    def _ensure_connected(self):
        if not self._connected:
            with self._lock:
                if not self._connected:
                    self._connect()

    def _request(self, header, parts=(), result=False, function=None, output=None, progress=None, items=None, again=3, wait=None):
        self._ensure_connected()
        output = output or (lambda reply, text: self.output(reply.get("stream", "stdout"), text))
        message_id = self._open(header, parts)
        try:
            deadline = time.monotonic() + (wait or self.timeout)
            while True:
                reply, body = self._receive(message_id, deadline, function or header["kind"])
                kind = reply["kind"]
                if kind == "close":
                    try:
                        self._unsolicited(reply, body, waiting=message_id)
                    except ConnectionClosed as closed:
                        # Never read by the server: it did not run, so it is made again once this client has said hello anew.
                        if closed.not_delivered and closed.reason != "unauthorized" and again > 0 and header["kind"] not in ("hello", "auth"):
                            self._done(message_id)
                            return self._request(header, parts, result, function, output, progress, items, again - 1)
                        raise
                    continue
                if kind == "output":
                    output(reply, body.decode("utf-8"))
                elif kind == "progress":
                    if progress:
                        progress(self._decode(body, reply))
                elif kind == "items":
                    if items:
                        items(self._decode(body, reply))
                    deadline = time.monotonic() + self.timeout  # a stream is alive while items come
                elif kind == "error":
                    raise RemoteError(self._decode(body, reply), function)
                elif result:
                    value = self._decode(body, reply)
                    return self._typed_result(function, value) if header["kind"] in ("call", "attach") else value
                else:
                    return reply
        finally:
            self._done(message_id)

    def _unsolicited(self, message, body, waiting=None):
        """What the server sends on its own: calls to this client's exports, events, pings, a goodbye (`waiting`: the
        id of the request waiting for its answer, which the goodbye's `read` says whether the server read)."""
        kind = message["kind"]
        if kind == "call":
            self._serve(message, body)
        elif kind == "event":
            payload = self._decode(body, message)
            if self._replaying is not None and "seq" in message:
                self._replaying.append((message["seq"], message, payload))  # (the connecting thread holds the lock)
                return
            self._event(message, payload)
        elif kind == "ping":
            self._send({"kind": "pong", "id": message["id"]})
        elif kind == "close":
            reason = self._decode(body, message) or {}
            if waiting is None:
                self._connected = False  # (a request's reader marked it when it read the close)
            read = reason.get("read")
            unread = waiting is not None and read is not None and waiting > read
            raise ConnectionClosed(reason.get("reason"), reason.get("message"), not_delivered=unread)
        # anything else is a late reply to an abandoned request

    def _event(self, message, payload):
        with self._lock:
            self.events_dropped_by_server += message.get("dropped", 0)
            if "seq" in message and self._event_epoch is not None:
                self._event_last = max(self._event_last, message["seq"])
            if self.on_event is None:
                self.events.append((message["fn"], payload))
                return
            self._pending_events.append((message["fn"], payload))
        self._deliver_events()

    def _deliver_events(self):
        """Hands pending events to on_event, outside the lock, one thread at a time and in the order they came."""
        while True:
            if not self._delivering.acquire(blocking=False):
                return  # the thread delivering now takes this one too
            try:
                while True:
                    with self._lock:
                        if not self._pending_events:
                            break
                        name, payload = self._pending_events.popleft()
                    self.on_event(name, payload)
            finally:
                self._delivering.release()
            with self._lock:
                if not self._pending_events:
                    return  # else one came after the last look and before the release: deliver it

    def _serve(self, call, body):
        """Runs one of this client's exports for the server, outside the lock: what it prints goes back live, line by
        line, as the call's output (other threads' printing is left alone), then the result or the error."""
        name = call.get("fn")
        reply = {"id": call["id"], "ser": "msgpack"}
        function = self.exports.get(name)
        if function is None:
            error = {"code": "unknown_function", "message": f"This Python client exports no function named '{name}' (it has: {', '.join(sorted(self.exports)) or 'none'})."}
            self._send(dict(reply, kind="error"), [msgpack.packb(error, use_bin_type=True)])
            return
        arguments = self._decode(body, call)
        try:
            with _CallOutput(lambda stream, text: self._send({"kind": "output", "id": call["id"], "stream": stream}, [text.encode("utf-8")])):
                value = function(**arguments) if isinstance(arguments, dict) else function(*(arguments or []))
        except Exception as e:  # the server gets it as a RemoteException
            error = {"code": "remote_exception", "message": str(e), "type": type(e).__name__}
            self._send(dict(reply, kind="error"), [msgpack.packb(error, use_bin_type=True)])
            return
        self._send(dict(reply, kind="result"), [_pack(value)])

    def export(self, name, function):
        """Lets the server call `function` under `name` while this client waits for anything (a call, poll)."""
        self.exports[name] = function

    def subscribe(self, pattern, after=None):
        """Subscribes to the server's events named by `pattern` (a name or glob); returns the names it matches now.
        Renewed when the client connects again after the server closed the connection: a server that keeps a history of
        its events then sends those published meanwhile first, once and in order; what it could not (it keeps fewer, it
        restarted, it keeps none) is told in `events_missed` and with a RuntimeWarning. `after`: an event id kept from an
        earlier client (`events_last_id`), to hear first what was published after it."""
        if after is not None:
            epoch, _, number = after.rpartition("-")
            if not epoch or not number.isdigit():
                raise ValueError(f"{after!r} is not an event id (EPOCH-NUMBER, such as events_last_id)")
            self._event_epoch, self._event_last = epoch, int(number)
        return self._subscribe(pattern, after, renewing=after is not None)

    @property
    def events_last_id(self):
        """The id of the last event this client received (or of where its subscriptions started), from a server that
        keeps a history of its events; keep it to go on from there with subscribe(pattern, after=...)."""
        return f"{self._event_epoch}-{self._event_last}" if self._event_epoch is not None else None

    def unsubscribe(self, pattern):
        self._subscriptions.pop(pattern, None)
        return self._request({"kind": "unsubscribe", "fn": pattern}, result=True, function="unsubscribe")

    def poll(self, seconds):
        """Serves what the server sends (events, calls to exports) for up to `seconds`, while making no call."""
        deadline = time.monotonic() + seconds
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            with self._lock:
                if not self._socket.poll(max(1, int(min(remaining, 0.02) * 1000))):
                    continue
                frames = self._socket.recv_multipart()
                message, body = msgpack.unpackb(frames[0], raw=False), frames[1] if len(frames) > 1 else b""
                if message.get("kind") not in ("call", "event", "ping", "close") and message.get("id") in self._inboxes:
                    self._inboxes[message["id"]].append((message, body))  # an answer to a request another thread waits for
                    continue
            self._unsolicited(message, body)

    def _arguments(self, header, function, arguments):
        """The request's header and parts for `arguments`: in JSON when the function accepts nothing else (its descriptor's
        input_serialization), else in MessagePack."""
        if self.__dict__.get("functions", {}).get(function, {}).get("input_serialization") == "json":
            import json
            return dict(header, ser="json"), [json.dumps(arguments, default=_json_default).encode()]
        return header, [_pack(arguments)]

    def invoke(self, function, args=(), kwargs=None, progress=None, output=None):
        """A call with everything: positional `args` or named `kwargs`, `progress` called with each report, `output(stream, text)`."""
        arguments = kwargs if kwargs else list(args)
        out = (lambda reply, text: output(reply.get("stream", "stdout"), text)) if output else None
        return self._request(*self._arguments({"kind": "call", "fn": function}, function, arguments), result=True, function=function, output=out, progress=progress)

    def stream(self, function, *args, window=256, **kwargs):
        """Yields a streaming function's items as they arrive. The server runs at most `window` items ahead; closing the
        generator early cancels the function. A stream the server closed without reading is made again once this client
        has said hello anew, as a call is; one that had sent items raises ConnectionClosed."""
        header, parts = self._arguments({"kind": "call", "fn": function, "window": window}, function, kwargs if kwargs else list(args))
        for again in (3, 2, 1, 0):
            self._ensure_connected()
            message_id = self._open(header, parts)
            consumed, yielded, unread, ended = 0, False, False, [False]
            try:
                for item in self._items_of(message_id, function, lambda reply, text: self.output(reply.get("stream", "stdout"), text), ended):
                    yielded = True
                    yield item
                    consumed += 1
                    if consumed >= max(1, window // 2):
                        self._send({"kind": "credit", "id": message_id, "credit": consumed})
                        consumed = 0
            except ConnectionClosed as closed:
                if not (closed.not_delivered and not yielded and closed.reason != "unauthorized" and again > 0):
                    raise
                unread = True
            finally:
                self._done(message_id)
                if not ended[0] and self._connected:
                    self._send({"kind": "cancel", "id": message_id})
            if not unread:
                return

    def _items_of(self, message_id, function, output, ended):
        """Yields the items request `message_id` receives, typed, until its result; raises its error, or ConnectionClosed.
        Output goes to `output(reply, text)`; `ended[0]` becomes True once the request is over (nothing to cancel). The
        result is how many items were made: fewer received (a job's record that lost its first ones) raises RemoteError."""
        deadline = time.monotonic() + self.timeout
        read = 0
        while True:
            reply, body = self._receive(message_id, deadline, function)
            kind = reply["kind"]
            if kind == "close":
                ended[0] = True
                self._unsolicited(reply, body, waiting=message_id)  # raises ConnectionClosed
            elif kind == "items":
                batch = self._typed_result(function, self._decode(body, reply), items=True)
                read += len(batch)
                yield from batch
                deadline = time.monotonic() + self.timeout  # a stream is alive while items come
            elif kind == "output":
                output(reply, body.decode("utf-8"))
            elif kind == "error":
                ended[0] = True
                raise RemoteError(self._decode(body, reply), function)
            elif kind == "result":
                ended[0] = True
                made = self._decode(body, reply)
                if isinstance(made, int) and read < made:
                    raise RemoteError({"code": "not_found", "message": f"{made} items were made, of which the first {made - read} are no longer "
                                       "recorded (a job's record keeps at most MaxOutputBytesPerJob of output and items, the oldest going first)"}, function)
                return

    def _typed_result(self, function, value, items=False):
        """A function's result (or a stream's batch of items) as Python's types where its return schema names them: a
        DateOnly is a date, a decimal a Decimal (docs/PROTOCOL.md has their wire forms). A pointer stays as it came."""
        described = getattr(self, "functions", {}).get(function) if isinstance(function, str) else None
        if described is None or isinstance(value, RemotePointer) or (isinstance(value, dict) and value.get("type") == "ipyrpc_data_pointer"):
            return value
        schemas = self.__dict__.setdefault("_result_schemas", {})
        if function not in schemas:
            text = described.get("return_schema")
            try:
                import json
                schemas[function] = json.loads(text) if isinstance(text, str) else text
            except ValueError:
                schemas[function] = None
        schema = schemas[function]
        if items:  # a stream's return schema is an array of its items
            item = schema.get("items") if isinstance(schema, dict) else None
            return [_typed(v, item) for v in value] if isinstance(value, list) else value
        return _typed(value, schema)

    @staticmethod
    def _decode(body, header):
        if header.get("ser") == "json":
            import json
            value = json.loads(body, object_hook=_frame_object_hook) if body else None
        else:
            value = _unpack(body) if body else None
        if isinstance(value, dict) and value.get("type") == "ipyrpc_data_pointer":
            return RemotePointer(value)
        return value

    def call(self, function, *args, **kwargs):
        """Calls a function with positional or named arguments (not both); its output prints as it arrives."""
        if args and kwargs:
            raise TypeError("pass arguments either by position or by name")
        arguments = kwargs if kwargs else list(args)
        return self._request(*self._arguments({"kind": "call", "fn": function}, function, arguments), result=True, function=function)

    def call_pointer(self, function, *args, ttl=None, **kwargs):
        """Calls a function for a pointer to its result: the value stays with the process that computed it.
        `ttl` (seconds, positive; math.inf for until released) is how long the holder keeps it."""
        if args and kwargs:
            raise TypeError("pass arguments either by position or by name")
        header = {"kind": "call", "fn": function, "pointer": True}
        if ttl is not None:
            if not ttl > 0:  # also refuses NaN
                raise ValueError(f"ttl must be a positive number of seconds (or math.inf), not {ttl!r}")
            header["ttl_ms"] = 2**63 - 1 if ttl == float("inf") else max(1, math.ceil(ttl * 1000))
        return self._request(*self._arguments(header, function, kwargs if kwargs else list(args)), result=True, function=function)

    def _holder(self, pointer):
        """A connection to the pointer's holder: this client when the holder is its server, else one kept per address."""
        endpoint = _as_pointer(pointer).endpoint
        if endpoint is None:
            raise RemoteError({"code": "holder_unreachable", "message": f"this client speaks ZeroMQ only; the holder serves {pointer['protocol']}"}, "fetch")
        if endpoint == self.endpoint:
            return self
        holders = self.__dict__.setdefault("_holders", {})
        if endpoint not in holders:
            try:
                holders[endpoint] = IpyRpcClient(endpoint, timeout=min(self.timeout, 5.0), output=self.output, secret=self._secret)
            except TimeoutError as e:
                raise RemoteError({"code": "holder_unreachable", "message": f"the holder at {endpoint} did not answer: {e}"}, "fetch") from None
        return holders[endpoint]

    def fetch(self, pointer, start=None, stop=None):
        """The value a pointer points to, or rows [start, stop) of it, straight from its holder (negative indices count from the end).
        Over ZeroMQ when the holder serves it, else with a plain HTTP GET of the value's path."""
        pointer = _as_pointer(pointer)
        if pointer["protocol"] != "zmq":
            http = next((e for e in [{"protocol": pointer["protocol"], "host": pointer["host"], "port": pointer["port"], "path": pointer["path"].rsplit("/data/", 1)[0]}]
                         + list(pointer.get("alternates") or []) if e["protocol"] in ("http", "https")), None)
        elif pointer.get("alternates") and not self._zmq_reachable(pointer):
            http = next((e for e in pointer["alternates"] if e["protocol"] in ("http", "https")), None)
        else:
            http = None
        if http is not None:
            return self._fetch_http(pointer, http, start, stop)
        body = {"path": pointer["path"], "secret_key": pointer["secret_key"]}
        if start is not None:
            body["start"] = start
        if stop is not None:
            body["stop"] = stop
        return self._holder(pointer)._request({"kind": "fetch"}, [_pack(body)], result=True, function="fetch")

    def _zmq_reachable(self, pointer):
        try:
            self._holder(pointer)
            return True
        except RemoteError:
            return False

    def _fetch_http(self, pointer, endpoint, start, stop):
        """GET {base}/data/{id}?start=&stop= with the key in the IpyRpc-Key header (PROTOCOL.md, Pointers)."""
        import urllib.error
        import urllib.parse
        import urllib.request
        query = urllib.parse.urlencode({k: v for k, v in (("start", start), ("stop", stop)) if v is not None})
        url = f"{endpoint['protocol']}://{endpoint['host']}:{endpoint['port']}{endpoint['path']}/data/{pointer['path'].rsplit('/', 1)[-1]}" + (f"?{query}" if query else "")
        request = urllib.request.Request(url, headers={"IpyRpc-Key": pointer["secret_key"], "Accept": "application/msgpack"})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return _unpack(response.read())
        except urllib.error.HTTPError as e:
            import json
            raise RemoteError(json.loads(e.read() or b"{}") or {"code": "internal", "message": str(e)}, "fetch") from None
        except OSError as e:
            raise RemoteError({"code": "holder_unreachable", "message": f"the holder at {url} did not answer: {e}"}, "fetch") from None

    def release(self, pointer):
        """Drops the value at its holder; later fetches raise RemoteError with code pointer_released."""
        return self._holder(pointer)._request({"kind": "release"}, [_pack({"path": pointer["path"], "secret_key": pointer["secret_key"]})], result=True, function="release")

    def submit(self, function, *args, timeout_ms=None, **kwargs):
        """Queues a call as a job and returns a Job at once; the job runs on if this client goes away."""
        if args and kwargs:
            raise TypeError("pass arguments either by position or by name")
        header = {"kind": "submit", "fn": function}
        if timeout_ms is not None:
            header["timeout_ms"] = timeout_ms
        info = self._request(*self._arguments(header, function, kwargs if kwargs else list(args)), result=True, function=function)
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
        return self._request({"kind": "list"}, [msgpack.packb(_job_query(state, function, limit))], result=True, function="list")

    def cancel_job(self, job_id):
        """Cancels a job by id; False if it had already finished."""
        return self._request({"kind": "cancel", "job": job_id}, result=True, function="cancel")

    def close(self):
        for holder in self.__dict__.get("_holders", {}).values():
            holder.close()
        with self._lock:
            self._socket.close(0)


def _event_stream_items(response):
    """The items of a text/event-stream response as they come: (its id or None, its event name or None, its data
    lines joined); comments (": keep-alive") are skipped."""
    name, data, event_id = None, [], None
    for raw in response:
        line = raw.decode("utf-8").rstrip("\n").rstrip("\r")
        if not line:
            if name is not None or data or event_id is not None:
                yield event_id, name, "\n".join(data)
            name, data, event_id = None, [], None
            continue
        field, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if field == "event":
            name = value
        elif field == "data":
            data.append(value)
        elif field == "id":
            event_id = value


class JsonRpcClient(_RemoteFunctions):
    """IpyRpc over HTTP (JSON-RPC 2.0 at the server's `/rpc`) with Python's standard library alone: no ZeroMQ, no
    msgpack. Functions are attributes with their remote docs (`client.add(2, 3)`, `help(client.add)`), output prints
    live as it comes (newline-delimited JSON), failures raise RemoteError, results come in Python's types where the
    schema names them, and jobs, pointers and streams work as the server's JSON-RPC methods allow (a stream's items
    arrive together, at its end). `token` is sent as a bearer token, for a server behind HTTP authentication.

        client = JsonRpcClient("http://127.0.0.1:7777")
        client.add(2, 3)
        job = client.submit("print_lines", 20); job.wait()
    """

    def __init__(self, url, timeout=30.0, output=None, token=None, headers=None, progress=None):
        base = url.rstrip("/")
        self.url = base if base.endswith("/rpc") else base + "/rpc"
        self.timeout = timeout
        self.output = output or IpyRpcClient._print_output
        self.progress = progress  # called with each progress report of a call or attached job, as it comes
        self._headers = dict(headers or {})
        if token:
            self._headers["Authorization"] = "Bearer " + token
        self._ids = itertools.count(1)
        self.refresh()

    def refresh(self):
        """Fetches the function list again (rpc.discover)."""
        document = self._post("rpc.discover", None, "rpc.discover")
        self.functions = {m["name"]: self._descriptor(m) for m in document.get("methods", [])}

    @staticmethod
    def _descriptor(method):
        """An OpenRPC method as the describe message's descriptor (what RemoteFunction and help read)."""
        result = method.get("result") or {}
        schema = result.get("schema") or {}
        return {
            "name": method["name"],
            "summary": method.get("summary"),
            "remarks": method.get("x-ipyrpc-remarks"),
            "returns": result.get("description"),
            "return_type": schema.get("x-csharp-type", "void") if result else "void",
            "return_schema": schema,
            "stream": bool(method.get("x-ipyrpc-stream")),
            "exceptions": [{"type": e.get("type", ""), "description": e.get("description", "")} for e in method.get("x-ipyrpc-exceptions", [])],
            "parameters": [{
                "name": p["name"],
                "type": (p.get("schema") or {}).get("x-csharp-type", "object"),
                "doc": p.get("description"),
                "optional": not p.get("required", False),
                "default": (p.get("schema") or {}).get("x-csharp-default"),
                "params": bool(p.get("x-ipyrpc-params")),
            } for p in method.get("params", [])],
        }

    def _post(self, method, params, function, live=False, timeout=None, extra=None):
        """One JSON-RPC request; its result, or RemoteError. `live`: output printed as the call runs (a stream's items,
        sent as they come, are gathered into the result as a plain response has them); `extra`: headers."""
        exchange, gathered = self._exchange(method, params, function, live, timeout, extra), []
        while True:
            try:
                gathered.extend(next(exchange))
            except StopIteration as end:
                result, streamed = end.value
                stream = live and getattr(self, "functions", {}).get(function, {}).get("stream", False)
                return gathered if streamed or (stream and isinstance(result, int)) else result

    def _exchange(self, method, params, function, live=False, timeout=None, extra=None):
        """Makes one JSON-RPC request, yielding each batch of a stream's items as it comes (NDJSON); returns (result, whether
        items were streamed), or raises RemoteError. Output and progress notifications go to self.output and self.progress."""
        import json
        import urllib.error
        import urllib.request
        body = {"jsonrpc": "2.0", "method": method, "id": next(self._ids)}
        if params is not None:
            body["params"] = params
        headers = dict(self._headers, **(extra or {}), **{"Content-Type": "application/json", "Accept": "application/x-ndjson" if live else "application/json"})
        request = urllib.request.Request(self.url, json.dumps(body, default=_json_default).encode(), headers, method="POST")
        answer, streamed = None, False
        try:
            with urllib.request.urlopen(request, timeout=timeout or self.timeout) as response:
                for line in response if live else [response.read()]:
                    if not line.strip():
                        continue
                    message = json.loads(line, object_hook=_json_object_hook, parse_float=_JsonFloat)
                    kind = message.get("method")
                    if kind == "ipyrpc.output":  # a piece of output, while the call runs
                        self.output(message["params"].get("stream", "stdout"), message["params"].get("text", ""))
                    elif kind == "ipyrpc.items":  # a batch of a stream's items, as the function makes them
                        streamed = True
                        yield self._typed(function, message["params"]["items"], items=True)
                    elif kind == "ipyrpc.progress":
                        if self.progress:
                            self.progress(_floats(message["params"]["value"]))
                    else:
                        answer = message
        except urllib.error.HTTPError as e:  # a refusal before any call (403, 401, 413...): its body says why
            try:
                answer = json.loads(e.read(), object_hook=_json_object_hook, parse_float=_JsonFloat)
            except ValueError:
                raise RemoteError({"code": "unavailable" if e.code >= 500 else "bad_message", "message": f"HTTP {e.code}: {e.reason}"}, function) from None
        if answer is None:
            raise RemoteError({"code": "bad_message", "message": "the server's answer had no JSON-RPC response"}, function)
        if "error" in answer:
            error = _floats(answer["error"])
            raise RemoteError(dict(error.get("data") or {}, message=error.get("message", "")), function)
        result = answer.get("result") if method not in ("rpc.status", "rpc.jobs", "rpc.fetch", "rpc.discover") else _floats(answer.get("result"))
        return result, streamed

    def _params(self, args, kwargs):
        if args and kwargs:
            raise TypeError("pass arguments either by position or by name")
        return kwargs if kwargs else list(args)

    def call(self, function, *args, **kwargs):
        """Calls a function with positional or named arguments (not both); its output prints as it arrives (a streaming
        function's result is its items, gathered: `stream` gives them as they come)."""
        value = self._post(function, self._params(args, kwargs), function, live=True)
        streams = self.functions.get(function, {}).get("stream", False)
        return value if streams else self._typed(function, value)

    def call_pointer(self, function, *args, ttl=None, **kwargs):
        """Calls a function for a pointer to its result (the IpyRpc-Pointer header): the value stays where it was
        computed; fetch rows of it with `fetch`. `ttl`: seconds its holder keeps it."""
        headers = {"IpyRpc-Pointer": "true"}
        if ttl is not None:
            if not ttl > 0:
                raise ValueError(f"ttl is a positive number of seconds, not {ttl!r}")
            headers["IpyRpc-Pointer-Ttl-Ms"] = str(max(1, math.ceil(ttl * 1000)) if ttl != math.inf else 100 * 365 * 24 * 3600 * 1000)
        return RemotePointer(self._post(function, self._params(args, kwargs), function, live=True, extra=headers))

    def stream(self, function, *args, **kwargs):
        """Yields a streaming function's items as the function makes them (NDJSON lines of the response)."""
        for batch in self._exchange(function, self._params(args, kwargs), function, live=True):
            yield from batch

    def _typed(self, function, value, items=False):
        described = self.functions.get(function)
        if described is None or (isinstance(value, dict) and value.get("type") == "ipyrpc_data_pointer"):
            return _floats(value)
        schema = described.get("return_schema")
        if items:
            item = schema.get("items") if isinstance(schema, dict) else None
            return _floats([_typed(v, item) for v in value]) if isinstance(value, list) else _floats(value)
        return _floats(_typed(value, schema))

    def submit(self, function, *args, timeout_ms=None, **kwargs):
        """Queues the call as a job and returns at once with its handle (`wait()` for its result)."""
        params = {"method": function, "params": self._params(args, kwargs)}
        if timeout_ms is not None:
            params["timeout_ms"] = timeout_ms
        return JsonRpcJob(self, self._post("rpc.submit", params, function))

    def attach(self, job_id):
        return JsonRpcJob(self, self.status(job_id))

    def status(self, job_id, output=False):
        return self._post("rpc.status", {"job": job_id, "output": output}, "rpc.status")

    def jobs(self, state=None, function=None, limit=100):
        """The jobs the server remembers, newest first; filter by state and by a glob on the function name."""
        return self._post("rpc.jobs", _job_query(state, function, limit), "rpc.jobs")

    def cancel_job(self, job_id):
        return self._post("rpc.cancel", [job_id], "rpc.cancel")

    def fetch(self, pointer, start=None, stop=None):
        """The value a pointer points to, or rows [start, stop) of it: the server fetches it from its holder."""
        params = {"pointer": dict(pointer)}
        if start is not None:
            params["start"] = start
        if stop is not None:
            params["stop"] = stop
        return self._post("rpc.fetch", params, "rpc.fetch")

    def release(self, pointer):
        return self._post("rpc.release", [dict(pointer)], "rpc.release")

    def events(self, *patterns, events_url=None, last_event_id=None, reconnect=5):
        """The server's events as they come, from its event stream (GET /events, Server-Sent Events): yields
        (name, payload) for each, once, in the order published, until the server stops (then the loop ends) or the
        caller leaves the loop. `patterns`: event names or globs (none: every event). `events_url`: the stream's
        address when it is not /events beside /rpc. A refusal (no such event, not allowed) raises RemoteError; a
        stream silent for `timeout` seconds (the server writes a keep-alive every 15 s) raises TimeoutError.
        `events_dropped` counts events the server dropped because this reader fell behind.

        When the connection drops (not when the server says it is stopping), the loop connects again, up to
        `reconnect` times in a row (waiting 0.5 s, 1 s, 2 s, ...), and asks for the events after the last one it
        had (`events_last_id`): it hears what was published meanwhile, once and in order. `events_missed` counts the
        times the server could no longer give all of it (a warning says why). `last_event_id` starts the loop after
        that id, an earlier loop's `events_last_id`. ConnectionError when every try failed.

            for name, line in client.events("chat.*"):
                print(name, line["text"])
        """
        import http.client
        import json
        import socket
        import time
        import urllib.error
        import urllib.parse
        import urllib.request
        import warnings
        url = events_url or self.url[: -len("/rpc")] + "/events"
        query = urllib.parse.urlencode([("pattern", p) for p in patterns])
        self.events_last_id = last_event_id
        failures = 0
        while True:
            headers = dict(self._headers, Accept="text/event-stream")
            if self.events_last_id:
                headers["Last-Event-ID"] = self.events_last_id
            request = urllib.request.Request(url + ("?" + query if query else ""), headers=headers)
            try:
                response = urllib.request.urlopen(request, timeout=self.timeout)
            except urllib.error.HTTPError as e:  # refused before the stream began: its body says why
                try:
                    error = json.loads(e.read()).get("error") or {}
                except ValueError:
                    error = {}
                raise RemoteError({"code": error.get("code", "bad_message"), "message": error.get("message", f"HTTP {e.code}: {e.reason}")}, "events") from None
            except (urllib.error.URLError, ConnectionError, http.client.HTTPException) as e:
                why = f"could not be reached ({e})"
                response = None
            if response is not None:
                why = "dropped"
                with response:
                    try:
                        for event_id, name, data in _event_stream_items(response):
                            if event_id is not None:
                                self.events_last_id = event_id
                            if name == "ipyrpc.closed":
                                return
                            if name == "ipyrpc.subscribed":
                                failures = 0
                            elif name == "ipyrpc.dropped":
                                self.events_dropped = getattr(self, "events_dropped", 0) + json.loads(data)["dropped"]
                            elif name == "ipyrpc.missed":
                                self.events_missed = getattr(self, "events_missed", 0) + 1
                                warnings.warn(json.loads(data)["message"], RuntimeWarning, stacklevel=2)
                            elif name:
                                yield name, _floats(json.loads(data, object_hook=_json_object_hook, parse_float=_JsonFloat))
                    except socket.timeout:
                        raise TimeoutError(f"the event stream at {url} was silent for {self.timeout} s") from None
                    except (ConnectionError, http.client.HTTPException):
                        pass  # the connection dropped: connect again, after the last event heard
            failures += 1
            if failures > reconnect:
                raise ConnectionError(f"the event stream at {url} {why}, {failures} times in a row")
            time.sleep(0.5 * 2 ** (failures - 1))

    def close(self):
        pass  # each request is its own HTTP exchange

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


class JsonRpcJob:
    """A job submitted over JSON-RPC: `id`, `info`; `wait()` for its result (output printed live), `cancel()`."""

    def __init__(self, client, info):
        self.client, self.info, self.id = client, info, info["id"]

    def refresh(self):
        self.info = self.client.status(self.id)
        return self.info

    def wait(self, timeout=None):
        """Waits for the job's end (however long it runs: `timeout` in seconds bounds the HTTP request, not the job)."""
        function = self.info.get("function")
        value = self.client._post("rpc.attach", [self.id], function, live=True, timeout=timeout or 24 * 3600)
        return value if self.client.functions.get(function, {}).get("stream", False) else self.client._typed(function, value)

    def items(self, timeout=None):
        """A streaming function's job: yields every item it made so far, then the rest as it makes them (NDJSON lines)."""
        function = self.info.get("function")
        for batch in self.client._exchange("rpc.attach", [self.id], function, live=True, timeout=timeout or 24 * 3600):
            yield from batch

    def cancel(self):
        return self.client.cancel_job(self.id)


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

    def wait(self, progress=None):
        """Replays the job's output so far, then the rest as it comes, then returns its result (or raises RemoteError).
        `progress` (a function with an IProgress parameter) is called with each report: all made so far, then live."""
        start = 0 if progress else self._last  # reports are replayed from the first; output seen already is skipped
        return self.client._request({"kind": "attach", "job": self.id, "from": start}, result=True, function=self.info["function"],
                                    output=self._record, progress=progress)

    def items(self):
        """A streaming function's job: yields every item it made so far, then the rest as it makes them, and ends with
        the job (raising RemoteError if it failed). Its output is printed in its place, once, as wait() prints it.
        Each call reads from the first item; closing the generator early stops the reading, not the job."""
        client = self.client
        client._ensure_connected()
        message_id = client._open({"kind": "attach", "job": self.id, "from": 0})
        ended = [False]
        try:
            yield from client._items_of(message_id, self.info["function"], self._record, ended)
        finally:
            client._done(message_id)
            if not ended[0] and client._connected:
                client._send({"kind": "cancel", "id": message_id})

    def _record(self, reply, text):
        seq = reply.get("seq")
        if seq is not None:
            if seq <= self._last:
                return  # seen already (a replay, or before a reconnect)
            self._last = seq
        self.output.append((reply.get("stream", "stdout"), text))
        self.client.output(reply.get("stream", "stdout"), text)

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
    print("mean_json([1, 2, 6]) =", client.call("mean_json", [1.0, 2.0, 6.0]))  # sent in JSON, all it accepts
    if numpy is not None:
        print("mean_json(numpy) =", client.call("mean_json", numpy.array([2.0, 4.0])))
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


def pointers_demo(endpoint):
    """For the tests (with tests' PointerFunctions): pointers fetched, sliced and passed back, as numpy arrays."""
    c = IpyRpcClient(endpoint, output=lambda stream, text: None)
    p = c.call_pointer("ptr.matrix", 1000, 8)
    print("pointer:", p["type"], p["protocol"], p.shape, p["bytes"], p["value_type"], "direct" if p.endpoint != endpoint else "server")
    expected = numpy.arange(8000, dtype="<f8").reshape(1000, 8)
    head = c.fetch(p, 0, 10)
    print("head:", type(head).__name__, head.shape, bool((head == expected[:10]).all()))
    print("tail equal:", bool((c.fetch(p, -3) == expected[-3:]).all()))
    print("whole equal:", bool((c.fetch(p) == expected).all()))
    print("sum by pointer:", c.call("ptr.sum", p) == expected.sum())
    h = c.call_pointer("ptr.head", p, 10)
    print("chain:", c.call("ptr.sum", h) == expected[:10].sum())
    sums = c.call("ptr.sums", {"mixed": [h, expected[:2]]})  # a pointer inside a list, beside an array sent inline
    print("pointer in a list:", sums["mixed"] == expected[:10].sum() + expected[:2].sum())
    print("numpy argument:", c.call("ptr.sum", expected[:2]) == expected[:2].sum())
    c.release(p)
    try:
        c.fetch(p, 0, 1)
    except RemoteError as e:
        print("after release:", e.code)
    short = c.call_pointer("ptr.range", 5, ttl=0.2)
    time.sleep(0.5)
    try:
        c.fetch(short)
    except RemoteError as e:
        print("after ttl:", e.code)
    frame = c.call("ptr.frame", 20)
    print("frame:", type(frame).__name__, frame.shape, frame.index.name, str(frame.index.dtype), list(frame.columns), [str(t) for t in frame.dtypes])
    fp = c.call_pointer("ptr.frame", 20)
    part = c.fetch(fp, 3, 6)
    print("frame slice equal:", part.equals(frame.iloc[3:6]), part.iloc[0]["ticker"])
    print("frame total:", c.call("ptr.frame_total", frame))
    print("frame total by pointer:", c.call("ptr.frame_total", fp))
    alternate = next((a for a in h.get("alternates") or [] if a["protocol"] == "http"), None)
    if alternate is not None:
        over_http = RemotePointer(h, protocol="http", host=alternate["host"], port=alternate["port"], path=alternate["path"] + "/data/" + h["path"].rsplit("/", 1)[-1], alternates=[])
        print("http rows equal:", bool((c.fetch(over_http, 5, 8) == expected[5:8]).all()))
    tp = c.call_pointer("ptr.tensor", 5)
    rows = c.fetch(tp, 1, 3)
    print("tensor rows:", type(rows).__name__, rows.shape, bool((rows == numpy.arange(30.0).reshape(5, 2, 3)[1:3]).all()))
    print("tensor argument:", c.call("ptr.tensor_sum", numpy.arange(12.0).reshape(2, 2, 3)))
    forged = RemotePointer(h, secret_key="0" * 32)
    try:
        c.fetch(forged)
    except RemoteError as e:
        print("wrong key:", e.code)
    import json
    plain = json.loads(json.dumps(dict(h)))  # a pointer that went through JSON: a plain dict
    print("plain dict rows equal:", bool((c.fetch(plain, 1, 3) == expected[1:3]).all()), c.call("ptr.sum", plain) == expected[:10].sum())
    for ttl in (0, -1, float("nan")):
        try:
            c.call_pointer("ptr.range", 5, ttl=ttl)
        except ValueError as e:
            print("ttl refused:", ttl, "must be a positive number" in str(e))
    print("ttl forever:", c.call_pointer("ptr.range", 5, ttl=math.inf).get("expires_at"))
    c.release(plain)
    try:
        c.fetch(h)
    except RemoteError as e:
        print("released by plain dict:", e.code)
    c.close()


def both_ways_demo(endpoint):
    """The server calls this client back, pushes events to it, streams to it and reports progress (for the tests)."""
    client = IpyRpcClient(endpoint, output=lambda stream, text: None)
    client.export("caller.answer", lambda question: print("pondering " + question) or "python says hi to " + question)
    print("asked back:", client.call("bw.ask_caller", "the server"))
    print("matched:", client.subscribe("bw.ticked"))
    seen = []

    def ticked(name, tick):  # called in the order events came, one at a time
        if not seen or seen[-1] != tick["number"]:
            seen.append(tick["number"])
    client.on_event = ticked
    deadline = time.monotonic() + 20
    while (not seen or seen[-1] != 9) and time.monotonic() < deadline:
        client.poll(0.1)
    print("events:", " ".join(map(str, seen)))
    items = list(client.stream("bw.count", 5000, window=64))
    print(f"stream: {len(items)} items, in order: {items == list(range(5000))}")
    # A stream submitted as a job: its items read as it makes them, and again later from another connection.
    job = client.submit("bw.count", 300)
    print("stream job:", list(job.items()) == list(range(300)), "then", job.wait())
    other = IpyRpcClient(endpoint, output=lambda stream, text: None)
    print("stream job from another connection:", list(other.attach(job.id).items()) == list(range(300)))
    other.close()
    got, failing = [], client.submit("bw.count_then_fail", 4)
    try:
        for item in failing.items():
            got.append(item)
    except RemoteError as e:
        print("failed stream job:", got, e.remote_type, e.message)
    long_job = client.submit("bw.count", 20000)
    long_job.wait()
    try:
        print("long stream job:", len(list(long_job.items())))
    except RemoteError as e:
        print("long stream job:", e.code, e.message.split(":")[0])
    attribute = client.bw.count(3)  # called as a function: a generator, as a Python generator function gives
    print(f"stream as a function: {type(attribute).__name__} {list(attribute)}")
    reports = []
    result = client.invoke("bw.work", [3], progress=lambda tick: reports.append(tick["number"]))
    print("progress:", " ".join(map(str, reports)), "then", result)
    job_reports = []
    worked = client.submit("bw.work", 3)
    worked.wait()  # ended; its reports are replayed to a later wait that asks for them
    print("job progress:", worked.wait(progress=lambda tick: job_reports.append(tick["number"])), job_reports)
    for i, item in enumerate(client.stream("bw.count_forever", window=8)):
        if i == 4:
            break
    print("stopped early; still serving:", client.call("bw.work", 1))
    # Calls made while a stream is read, and from several threads at once, share the connection: each gets its own answers.
    interleaved = [(item, client.call("bw.work", 1), client.call("bw.ask_caller", str(item))) for item in client.stream("bw.count", 600, window=16)]
    print("calls inside a stream:", len(interleaved), all(w == "done" and a.startswith(f"python says hi to {i} |") for i, w, a in interleaved),
          [i for i, _, _ in interleaved] == list(range(600)))
    import threading
    failures, counted = [], []

    def caller(k):
        for n in range(40):
            answer = client.call("bw.ask_caller", f"{k}-{n}")
            if answer != f"python says hi to {k}-{n} | printed: pondering {k}-{n}":  # each export's printing is its own
                failures.append((k, n, answer))

    def streamer():
        counted.append(list(client.stream("bw.count", 2000, window=32)) == list(range(2000)))

    threads = [threading.Thread(target=caller, args=(k,)) for k in range(6)] + [threading.Thread(target=streamer) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    print("threads:", "all answered" if not failures and not any(t.is_alive() for t in threads) else failures[:3], "| streams whole:", counted)
    # An export that takes its time does not hold the connection: another thread's call is answered meanwhile.
    started, other_done, others = threading.Event(), threading.Event(), []

    def slow(question):
        started.set()
        print("waiting for", question)
        return "slow, " + ("and not alone" if other_done.wait(10) else "and alone")

    def other():
        if started.wait(10):
            others.append(client.call("bw.work", 1))
        other_done.set()
    client.export("caller.answer", slow)
    helper = threading.Thread(target=other)
    helper.start()
    print("a slow export:", client.call("bw.ask_caller", "the others"), others)
    helper.join(30)
    client.close()


def json_rpc_demo(url):
    """Over HTTP with the standard library alone (for the tests): calls, live output, failures, streams, jobs, pointers, types."""
    import inspect
    printed = []
    client = JsonRpcClient(url, output=lambda stream, text: printed.append((stream, text)))
    print("signature:", inspect.signature(client.add), "|", client.add.__doc__.splitlines()[0])
    print("add:", client.add(2, 3), "scale:", client.scale(value=4))
    try:
        client.fail("from json-rpc")
    except RemoteError as e:
        print("failed:", e.code, e.remote_type, e.message, "| printed live:", printed)
    print("stream:", list(client.count_to(4)))
    job = client.submit("add", 5, 6)
    print("job:", job.wait(), client.status(job.id)["state"], any(j["id"] == job.id for j in client.jobs(function="add")))
    print("stream job:", list(client.submit("count_to", 3).items()))
    counting = client.stream("count_to", 3000)
    first = next(counting)  # the first batch comes as it is made, not with the last
    print("live stream:", first, sum(1 for _ in counting) + 1)
    reports = []
    client.progress = reports.append
    print("progress over json-rpc:", client.work_with_progress(3), reports)
    pointer = client.ptr.matrix(3, 2)  # configured to answer with a pointer
    rows = client.fetch(pointer, 1, 3)
    print("pointer:", pointer["type"], pointer["shape"], type(rows).__name__, rows.tolist() if hasattr(rows, "tolist") else rows, client.release(pointer))
    asked = client.call_pointer("add", 20, 22, ttl=60)
    print("asked for a pointer:", asked["value_type"], client.fetch(asked))
    stamp = datetime.datetime(2026, 12, 7, 18, 30, 5, tzinfo=datetime.timezone(datetime.timedelta(hours=1)))
    when = client.nd.when(datetime.date(2026, 12, 31), datetime.time(23, 45), stamp, datetime.timedelta(minutes=90), uuid.uuid4(), decimal.Decimal("12.50"))
    print("typed:", when[1:])
    try:
        client.call("no.such", 1)
    except RemoteError as e:
        print("unknown:", e.code)


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    if "--json-rpc" in sys.argv:
        json_rpc_demo(sys.argv[1])
        sys.exit(0)
    if "--interactive-check" in sys.argv:
        # For the tests: what help(), IPython's `?`, tab completion and a failing call show.
        import inspect
        import pydoc
        import traceback
        c = IpyRpcClient(sys.argv[1], output=lambda stream, text: print(f"[live {stream}] {text}", end=""))
        print("signature:", inspect.signature(c.add))
        print("dir has add:", "add" in dir(c), "| has call:", "call" in dir(c))
        print("doc:", c.add.__doc__.splitlines()[0])
        print(pydoc.render_doc(c.add, renderer=pydoc.plaintext))
        print("print_lines returned", c.print_lines(2))
        try:
            c.fail("from python")
        except RemoteError as e:
            print("".join(traceback.format_exception(e)))
        c.close()
        sys.exit(0)
    if "--ndarray" in sys.argv:
        # For the tests: nested lists go out, an ndarray (ext type 2) comes back as nested lists.
        c = IpyRpcClient(sys.argv[1], output=lambda stream, text: None)
        transposed = c.call("nd.transpose", [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
        print("transpose:", transposed.tolist() if numpy is not None else transposed)
        print("transpose type:", type(transposed).__name__)
        print("describe:", c.call("nd.describe", [[[1, 2], [3, 4]], [[5, 6], [7, 8]]]))
        try:
            c.call("nd.transpose", [[1.0, 2.0], [3.0]])
        except RemoteError as e:
            print("ragged:", e.code)
        print("histogram:", c.call("nd.histogram", {5: 2, -1: 1}))  # a dict with int keys, both ways
        # Dates, times, durations, UUIDs and decimals go as the text (or seconds) the protocol gives them.
        stamp = datetime.datetime(2026, 12, 7, 18, 30, 5, tzinfo=datetime.timezone(datetime.timedelta(hours=1)))
        print("days:", list(c.stream("nd.days", datetime.date(2026, 12, 30), 3)))
        print("wide:", c.call("nd.twice", 2**100) == 2**101, c.call("nd.twice", -5))
        print("when:", c.call("nd.when", datetime.date(2026, 12, 31), datetime.time(23, 45, 0, 500000), stamp,
                              datetime.timedelta(minutes=90), uuid.UUID("6f9619ff-8b86-d011-b42d-00cf4fc964ff"), decimal.Decimal("12.50")))
        import inspect
        print("sum_all:", inspect.signature(c.nd.sum_all), c.nd.sum_all(1, 2, 3.5), c.nd.sum_all())  # a params array is *args
        c.close()
        sys.exit(0)
    if "--large" in sys.argv:
        # For the tests: several connections at once echo distinct payloads of 70-400 KB; every byte must come back.
        import random
        import threading
        failures = []

        def echo_many(seed):
            c = IpyRpcClient(sys.argv[1], output=lambda stream, text: None)
            rng = random.Random(seed)
            for i in range(10):
                data = rng.randbytes(rng.randint(70_000, 400_000))
                if c.call("echo_bytes", data) != data:
                    failures.append(f"call {i} of connection {seed}")
            c.close()

        threads = [threading.Thread(target=echo_many, args=(seed,)) for seed in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        print("large echoes:", "all intact" if not failures else "different: " + ", ".join(failures))
        sys.exit(0)
    if "--pointers" in sys.argv:
        pointers_demo(sys.argv[1])
        sys.exit(0)
    if "--both-ways" in sys.argv:
        both_ways_demo(sys.argv[1])
        sys.exit(0)
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
