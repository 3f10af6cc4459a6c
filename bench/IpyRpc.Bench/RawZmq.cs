using IpyRpc.ZeroMq.Native;

namespace IpyRpc.Bench;

/// <summary>
/// The floor for the ZeroMQ transport: bare libzmq, no IpyRpc. A ROUTER that echoes every message
/// and a DEALER that ping-pongs (or pipelines) the same frames an IpyRpc call would send, both on
/// one thread with blocking calls: no queues, no thread hops, no encoding.
/// </summary>
/// <remarks>
/// Polled (the loop's <c>polled</c>, a probe and never the harness's floor), each side waits as IpyRpc's socket threads
/// do: in <c>poll(2)</c> on the socket's descriptor, not inside libzmq's blocking receive, and with a look at
/// <c>ZMQ_EVENTS</c> after each send (the descriptor is edge-triggered, so a thread that waits outside libzmq must ask).
/// The difference from the plain floor is what those system calls cost a call.
/// </remarks>
internal static unsafe class RawZmq
{
    /// <summary>
    /// Waits, as IpyRpc's socket loop does, until <paramref name="socket"/> has a message: in poll(2), unless the look
    /// after the last send (<paramref name="ready"/>) found one, then a look that takes in the socket's commands.
    /// Returns how many times it waited in poll(2).
    /// </summary>
    private static int WaitPolled(ZmqSocketHandle socket, int fd, bool ready)
    {
        int waits = 0;
        while (!ready)
        {
            var wait = new PollFd { Fd = fd, Events = LibZmq.POLLIN };
            LibC.poll(&wait, 1, -1);
            waits++;
            ready = LookPolled(socket);
        }

        return waits;
    }

    /// <summary>Reads ZMQ_EVENTS (libzmq takes in the socket's pending commands to answer); true when a message waits.</summary>
    private static bool LookPolled(ZmqSocketHandle socket)
    {
        int events = 0;
        nuint length = sizeof(int);
        LibZmq.zmq_getsockopt(socket, LibZmq.EVENTS, &events, &length);
        return (events & LibZmq.POLLIN) != 0;
    }

    public sealed class EchoServer : IDisposable
    {
        private readonly ZmqContextHandle _context = LibZmq.zmq_ctx_new();
        private readonly ZmqSocketHandle _socket;
        private readonly Thread _thread;
        private readonly bool _polled;
        private readonly int _fd; // polled: ZMQ_FD

        public EchoServer(string endpoint, bool polled = false)
        {
            _polled = polled;
            LibZmq.EnsureLoaded();
            _socket = LibZmq.zmq_socket(_context, LibZmq.ROUTER);
            if (polled) _fd = (int)SocketLoop.DescriptorOf(_socket); // read once, as IpyRpc's socket loop reads it
            SocketLoop.SetInt(_socket, LibZmq.SNDHWM, 100_000);
            SocketLoop.SetInt(_socket, LibZmq.RCVHWM, 100_000);
            if (LibZmq.zmq_bind(_socket, endpoint) < 0) throw new IOException("raw echo: bind failed: " + LibZmq.Error(LibZmq.zmq_errno()));
            Endpoint = SocketLoop.ReadLastEndpoint(_socket);
            _thread = new Thread(Run) { IsBackground = true, Name = "raw zmq echo" };
            _thread.Start();
        }

        public string Endpoint { get; }

        private void Run()
        {
            ZmqMessage* parts = stackalloc ZmqMessage[16];
            bool ready = false;
            while (true)
            {
                if (_polled) WaitPolled(_socket, _fd, ready);
                // Receive a whole multipart message into zmq_msg_t's and send them straight back (no copies).
                int n = 0;
                while (true)
                {
                    LibZmq.zmq_msg_init(&parts[n]);
                    if (LibZmq.zmq_msg_recv(&parts[n], _socket, 0) < 0) return; // context terminated
                    bool more = LibZmq.zmq_msg_more(&parts[n]) != 0;
                    n++;
                    if (!more || n == 16) break;
                }

                for (int i = 0; i < n; i++)
                {
                    LibZmq.zmq_msg_send(&parts[i], _socket, i < n - 1 ? LibZmq.SNDMORE : 0);
                    LibZmq.zmq_msg_close(&parts[i]);
                }

                if (_polled) ready = LookPolled(_socket);
            }
        }

        public void Dispose()
        {
            LibZmq.zmq_ctx_shutdown(_context);
            _thread.Join(TimeSpan.FromSeconds(5));
            _socket.Dispose();
            _context.Dispose();
        }
    }

    /// <summary>A DEALER used from one thread only.</summary>
    public sealed class Client : IDisposable
    {
        private readonly ZmqContextHandle _context = LibZmq.zmq_ctx_new();
        private readonly ZmqSocketHandle _socket;
        private readonly bool _polled;
        private readonly int _fd; // polled: ZMQ_FD
        private bool _ready; // polled: the look after the last send found a message

        /// <summary>Polled: how many times this client has waited in poll(2) for a reply.</summary>
        public long PollWaits { get; private set; }

        public Client(string endpoint, bool polled = false)
        {
            _polled = polled;
            LibZmq.EnsureLoaded();
            _socket = LibZmq.zmq_socket(_context, LibZmq.DEALER);
            if (polled) _fd = (int)SocketLoop.DescriptorOf(_socket); // read once, as IpyRpc's socket loop reads it
            SocketLoop.SetInt(_socket, LibZmq.SNDHWM, 100_000);
            SocketLoop.SetInt(_socket, LibZmq.RCVHWM, 100_000);
            if (LibZmq.zmq_connect(_socket, endpoint) < 0) throw new IOException("raw client: connect failed");
        }

        public void Send(ReadOnlyMemory<byte>[] frames)
        {
            for (int i = 0; i < frames.Length; i++)
            {
                fixed (byte* p = frames[i].Span)
                {
                    LibZmq.zmq_send(_socket, p, (nuint)frames[i].Length, i < frames.Length - 1 ? LibZmq.SNDMORE : 0);
                }
            }

            if (_polled) _ready = LookPolled(_socket);
        }

        /// <summary>Receives one whole message, copying each frame out as the IpyRpc transport does.</summary>
        public int Receive()
        {
            int total = 0;
            ZmqMessage message;
            if (_polled) PollWaits += WaitPolled(_socket, _fd, _ready);
            while (true)
            {
                LibZmq.zmq_msg_init(&message);
                LibZmq.zmq_msg_recv(&message, _socket, 0);
                int size = (int)LibZmq.zmq_msg_size(&message);
                byte[] copy = GC.AllocateUninitializedArray<byte>(size);
                new ReadOnlySpan<byte>(LibZmq.zmq_msg_data(&message), size).CopyTo(copy);
                total += size;
                bool more = LibZmq.zmq_msg_more(&message) != 0;
                LibZmq.zmq_msg_close(&message);
                if (!more) return total;
            }
        }

        public void Dispose()
        {
            _socket.Dispose();
            _context.Dispose();
        }
    }
}
