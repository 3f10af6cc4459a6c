"""A peer that reads and sends packed frames, written from docs/PROTOCOL.md ("ZeroMQ", packed frames).

Says in its handshake that it reads packed frames, sends five calls in one packed frame, and reads the replies,
packed or not. Usage: packed_peer.py ENDPOINT
"""
import struct
import sys

import msgpack
import zmq

MARKER = 0xC1


def block(header, parts):
    """One message in the stream block format."""
    head = msgpack.packb(header)
    data = b"".join(struct.pack("<Q", len(p)) + p for p in parts)
    return struct.pack("<IQ", len(head), len(data)) + head + data


def unpack(frame):
    """The (header, parts) of each message of a packed frame, in order."""
    assert frame[0] == MARKER
    at, messages = 1, []
    while at < len(frame):
        header_size, data_size = struct.unpack_from("<IQ", frame, at)
        at += 12
        header = msgpack.unpackb(frame[at:at + header_size])
        at += header_size
        end, parts = at + data_size, []
        while at < end:
            (size,) = struct.unpack_from("<Q", frame, at)
            at += 8
            parts.append(frame[at:at + size])
            at += size
        messages.append((header, parts))
    return messages


def main():
    sock = zmq.Context.instance().socket(zmq.DEALER)
    sock.setsockopt(zmq.METADATA, b"X-IpyRpc-Packed:1")
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(sys.argv[1])

    calls = {i: (10 * i, i) for i in range(1, 6)}
    packed = bytes([MARKER]) + b"".join(
        block({"v": 1, "kind": "call", "id": i, "ser": "msgpack", "fn": "add"}, [msgpack.packb([a, b])])
        for i, (a, b) in calls.items())
    sock.send(packed)

    results, packed_frames, plain_messages = {}, 0, 0
    poller = zmq.Poller()
    poller.register(sock, zmq.POLLIN)
    while len(results) < len(calls):
        if not poller.poll(10_000):
            sys.exit(f"no reply within 10 s; results so far: {results}")
        frames = sock.recv_multipart(copy=False)
        if packed_frames + plain_messages == 0:
            print("server reads packed:", frames[0].get("X-IpyRpc-Packed"))
        first = frames[0].bytes
        if first[0] == MARKER:
            packed_frames += 1
            messages = unpack(first)
        else:
            plain_messages += 1
            messages = [(msgpack.unpackb(first), [f.bytes for f in frames[1:]])]
        for header, parts in messages:
            if header["kind"] == "result":
                results[header["id"]] = msgpack.unpackb(parts[0])
            elif header["kind"] == "error":
                sys.exit(f"call {header['id']} failed: {msgpack.unpackb(parts[0])}")

    print("results:", " ".join(f"{i}={results[i]}" for i in sorted(results)))
    print("packed frames received:", packed_frames, "plain messages received:", plain_messages)


if __name__ == "__main__":
    main()
