using IpyRpc.ZeroMq;
using System.Reflection;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace IpyRpc.ZeroMq.Native;

/// <summary>
/// The part of libzmq 4.3's C API this transport uses, bound with source-generated marshalling
/// (no runtime stubs, AOT-safe). Only blittable signatures: strings go through UTF-8 marshalling.
/// </summary>
internal static unsafe partial class LibZmq
{
    private const string Library = "libzmq";

    public const int PAIR = 0, REP = 4, DEALER = 5, ROUTER = 6;
    public const int DONTWAIT = 1, SNDMORE = 2;
    public const short POLLIN = 1, POLLOUT = 2;
    public const int IDENTITY = 5, RCVMORE = 13, FD = 14, EVENTS = 15, LINGER = 17, RECONNECT_IVL = 18, RECONNECT_IVL_MAX = 21, MAXMSGSIZE = 22,
        SNDHWM = 23, RCVHWM = 24, LAST_ENDPOINT = 32, ROUTER_MANDATORY = 33, IMMEDIATE = 39,
        TCP_KEEPALIVE = 34, TCP_KEEPALIVE_CNT = 35, TCP_KEEPALIVE_IDLE = 36, TCP_KEEPALIVE_INTVL = 37,
        HEARTBEAT_IVL = 75, HEARTBEAT_TTL = 76, HEARTBEAT_TIMEOUT = 77,
        CURVE_SERVER = 47, CURVE_PUBLICKEY = 48, CURVE_SECRETKEY = 49, CURVE_SERVERKEY = 50, ZAP_DOMAIN = 55;
    public const int IO_THREADS = 1, BLOCKY = 70;
    public const int EAGAIN = 11, EINTR = 4, EHOSTUNREACH = 113, ETERM = 156384765;
    public const int SRCFD = 2;
    public const int EVENT_CONNECTED = 0x0001, EVENT_ACCEPTED = 0x0020, EVENT_DISCONNECTED = 0x0200, EVENT_HANDSHAKE_FAILED_NO_DETAIL = 0x0800,
        EVENT_HANDSHAKE_SUCCEEDED = 0x1000, EVENT_HANDSHAKE_FAILED_PROTOCOL = 0x2000, EVENT_HANDSHAKE_FAILED_AUTH = 0x4000;
    public const string ZapEndpoint = "inproc://zeromq.zap.01";

    static LibZmq() => NativeLibrary.SetDllImportResolver(typeof(LibZmq).Assembly, Resolve);

    /// <summary>Forces the resolver to run, turning a missing library into one clear error.</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    public static void EnsureLoaded()
    {
        int major, minor, patch;
        try
        {
            zmq_version(&major, &minor, &patch);
        }
        catch (DllNotFoundException e)
        {
            throw new ZeroMqNotFoundException(e);
        }

        if (major < 4 || (major == 4 && minor < 3))
        {
            throw new ZeroMqNotFoundException($"libzmq {major}.{minor}.{patch} is too old; IpyRpc needs 4.3 or later (heartbeats). Install a newer libzmq (Debian/Ubuntu: apt-get install libzmq5).");
        }
    }

    private static nint Resolve(string name, Assembly assembly, DllImportSearchPath? searchPath)
    {
        if (name != Library) return 0;
        string[] candidates = OperatingSystem.IsWindows() ? ["libzmq.dll", "libzmq-mt-4_3_5.dll", "libzmq-mt-4_3_4.dll"]
            : OperatingSystem.IsMacOS() ? ["libzmq.5.dylib", "libzmq.dylib", "/opt/homebrew/lib/libzmq.5.dylib", "/usr/local/lib/libzmq.5.dylib"]
            : ["libzmq.so.5", "libzmq.so", "/usr/lib/x86_64-linux-gnu/libzmq.so.5", "/usr/lib/aarch64-linux-gnu/libzmq.so.5", "/usr/local/lib/libzmq.so.5"];
        foreach (string candidate in candidates)
        {
            if (NativeLibrary.TryLoad(candidate, assembly, searchPath, out nint handle)) return handle;
        }

        throw new ZeroMqNotFoundException((Exception?)null);
    }

    public static string Error(int errno) => Marshal.PtrToStringUTF8(zmq_strerror(errno)) ?? "error " + errno;

    [LibraryImport(Library)] public static partial void zmq_version(int* major, int* minor, int* patch);
    [LibraryImport(Library)] public static partial ZmqContextHandle zmq_ctx_new();
    [LibraryImport(Library)] public static partial int zmq_ctx_set(ZmqContextHandle context, int option, int value);
    [LibraryImport(Library)] public static partial int zmq_ctx_shutdown(ZmqContextHandle context);
    [LibraryImport(Library)] public static partial int zmq_ctx_term(nint context);
    [LibraryImport(Library)] public static partial ZmqSocketHandle zmq_socket(ZmqContextHandle context, int type);
    [LibraryImport(Library)] public static partial int zmq_close(nint socket);
    [LibraryImport(Library)] public static partial int zmq_setsockopt(ZmqSocketHandle socket, int option, void* value, nuint length);
    [LibraryImport(Library, EntryPoint = "zmq_setsockopt")] public static partial int zmq_setsockopt_raw(nint socket, int option, void* value, nuint length);
    [LibraryImport(Library)] public static partial int zmq_getsockopt(ZmqSocketHandle socket, int option, void* value, nuint* length);
    [LibraryImport(Library, EntryPoint = "zmq_getsockopt")] public static partial int zmq_getsockopt_raw(nint socket, int option, void* value, nuint* length);
    [LibraryImport(Library, StringMarshalling = StringMarshalling.Utf8)] public static partial int zmq_bind(ZmqSocketHandle socket, string endpoint);
    [LibraryImport(Library, StringMarshalling = StringMarshalling.Utf8)] public static partial int zmq_connect(ZmqSocketHandle socket, string endpoint);
    [LibraryImport(Library, StringMarshalling = StringMarshalling.Utf8)] public static partial int zmq_socket_monitor(ZmqSocketHandle socket, string? endpoint, int events);
    [LibraryImport(Library)] public static partial int zmq_send(ZmqSocketHandle socket, void* buffer, nuint length, int flags);
    [LibraryImport(Library)] public static partial int zmq_recv(ZmqSocketHandle socket, void* buffer, nuint length, int flags);
    [LibraryImport(Library)] public static partial int zmq_msg_init(ZmqMessage* message);
    [LibraryImport(Library)] public static partial int zmq_msg_init_size(ZmqMessage* message, nuint size);
    [LibraryImport(Library)] public static partial int zmq_msg_init_data(ZmqMessage* message, void* data, nuint size, delegate* unmanaged<void*, void*, void> free, void* hint);
    [LibraryImport(Library)] public static partial int zmq_msg_send(ZmqMessage* message, ZmqSocketHandle socket, int flags);
    [LibraryImport(Library)] public static partial int zmq_msg_recv(ZmqMessage* message, ZmqSocketHandle socket, int flags);

    // The same two by the socket's raw pointer: no reference count taken and given back around the call (two
    // interlocked operations, about 25 ns a call), for a caller that holds the socket's lock, under which it is closed.
    [LibraryImport(Library, EntryPoint = "zmq_msg_send")] public static partial int zmq_msg_send_raw(ZmqMessage* message, nint socket, int flags);
    [LibraryImport(Library, EntryPoint = "zmq_msg_recv")] public static partial int zmq_msg_recv_raw(ZmqMessage* message, nint socket, int flags);
    [LibraryImport(Library)] public static partial int zmq_msg_close(ZmqMessage* message);
    [LibraryImport(Library)] public static partial void* zmq_msg_data(ZmqMessage* message);
    [LibraryImport(Library)] public static partial nuint zmq_msg_size(ZmqMessage* message);
    [LibraryImport(Library)] public static partial int zmq_msg_more(ZmqMessage* message);
    [LibraryImport(Library)] public static partial int zmq_poll(void* items, int count, long timeout);
    [LibraryImport(Library)] public static partial int zmq_errno();
    [LibraryImport(Library, StringMarshalling = StringMarshalling.Utf8)] public static partial nint zmq_msg_gets(ZmqMessage* message, string property);
    [LibraryImport(Library)] public static partial int zmq_msg_get(ZmqMessage* message, int property);
    [LibraryImport(Library, StringMarshalling = StringMarshalling.Utf8)] public static partial int zmq_has(string capability);
    [LibraryImport(Library)] public static partial int zmq_curve_keypair(byte* publicKey, byte* secretKey);
    [LibraryImport(Library)] public static partial nint zmq_strerror(int errno);
}

/// <summary><c>zmq_msg_t</c>: 64 opaque bytes, aligned as libzmq requires.</summary>
[StructLayout(LayoutKind.Sequential, Size = 64)]
internal struct ZmqMessage
{
    private readonly long _first;
}

/// <summary><c>zmq_pollitem_t</c> on POSIX, where <c>fd</c> is an <c>int</c>.</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct ZmqPollItem
{
    public nint Socket;
    public int Fd;
    public short Events;
    public short ReturnedEvents;
}

/// <summary><c>zmq_pollitem_t</c> on Windows, where <c>fd</c> is a pointer-sized SOCKET.</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct ZmqPollItemWindows
{
    public nint Socket;
    public nint Fd;
    public short Events;
    public short ReturnedEvents;
}
