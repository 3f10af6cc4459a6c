"""An independent MessagePack peer for the C# tests, using Debian's python3-msgpack.

  msgpack_peer.py encode        prints the document below, packed, as hex
  msgpack_peer.py check FILE    unpacks FILE and prints "equal" if it is the same document
"""
import sys

import msgpack


def document():
    ints = [0, 1, 127, 128, 255, 256, 65535, 65536, 2**32 - 1, 2**32, 2**63 - 1, 2**64 - 1,
            -1, -32, -33, -128, -129, -32768, -32769, -2**31, -2**31 - 1, -2**63]
    strings = ["", "a", "x" * 31, "x" * 32, "y" * 255, "z" * 256, "w" * 65535, "v" * 65536, "Кириллица ❤ 😀"]
    bins = [b"", b"\x00\xff", bytes(range(256)), bytes(256) * 257]
    arrays = [[], list(range(15)), list(range(16)), list(range(70000))]
    maps = [{}, {"k%d" % i: i for i in range(15)}, {"k%d" % i: i for i in range(16)}, {"k%d" % i: i for i in range(70000)}]
    floats = [0.5, -1.25, 1e300, float("inf")]
    exts = [msgpack.ExtType(5, b"abc"), msgpack.ExtType(7, b"x" * 16), msgpack.ExtType(9, b"y" * 300)]
    stamps = [msgpack.Timestamp(0, 0), msgpack.Timestamp(1514862245, 678901234),
              msgpack.Timestamp(17179869184, 1), msgpack.Timestamp(-1, 999999999)]
    return {"ints": ints, "strings": strings, "bins": bins, "arrays": arrays, "maps": maps,
            "floats": floats, "exts": exts, "stamps": stamps, "nested": [[[{"a": [None, True, False]}]]]}


def main():
    if sys.argv[1] == "encode":
        sys.stdout.write(msgpack.packb(document(), use_bin_type=True).hex())
    elif sys.argv[1] == "check":
        with open(sys.argv[2], "rb") as f:
            got = msgpack.unpackb(f.read(), raw=False, strict_map_key=False)
        want = document()
        if got == want:
            print("equal")
        else:
            for key in want:
                if got.get(key) != want[key]:
                    print("differs at", key, repr(got.get(key))[:200])
            sys.exit(1)


if __name__ == "__main__":
    main()
