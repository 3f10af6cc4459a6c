using System.Runtime.InteropServices;

namespace IpyRpc.ZeroMq.Native;

/// <summary>
/// The few Linux C library calls the socket loop uses: for its wake-up signal (an <c>eventfd</c> costs one system call
/// to raise and one to clear, where a ZeroMQ inproc pair costs several each way), and <c>poll</c> to wait on its
/// descriptors (<c>zmq_poll</c> polls once without waiting before it waits: two system calls a wait).
/// </summary>
internal static unsafe partial class LibC
{
    private const string Library = "libc";

    public const int EFD_NONBLOCK = 0x800, EFD_CLOEXEC = 0x80000;
    public const int EINTR = 4;

    [LibraryImport(Library, SetLastError = true)] public static partial int eventfd(uint initial, int flags);
    [LibraryImport(Library, SetLastError = true)] public static partial nint read(int fd, void* buffer, nuint count);
    [LibraryImport(Library, SetLastError = true)] public static partial nint write(int fd, void* buffer, nuint count);
    [LibraryImport(Library, SetLastError = true)] public static partial int close(int fd);
    [LibraryImport(Library, SetLastError = true)] public static partial int poll(PollFd* fds, nuint count, int timeoutMs);
}

/// <summary><c>struct pollfd</c>.</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct PollFd
{
    public int Fd;
    public short Events;
    public short ReturnedEvents;
}
