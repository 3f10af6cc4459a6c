using IpyRpc.ZeroMq.Native;

namespace IpyRpc.Bench;

/// <summary>
/// The floor for the ZeroMQ transport: bare libzmq, no IpyRpc. A ROUTER that echoes every message
/// and a DEALER that ping-pongs (or pipelines) the same frames an IpyRpc call would send, both on
/// one thread with blocking calls: no queues, no thread hops, no encoding.
/// </summary>
internal static unsafe class RawZmq
{
    public sealed class EchoServer : IDisposable
    {
        private readonly ZmqContextHandle _context = LibZmq.zmq_ctx_new();
        private readonly ZmqSocketHandle _socket;
        private readonly Thread _thread;

        public EchoServer(string endpoint)
        {
            LibZmq.EnsureLoaded();
            _socket = LibZmq.zmq_socket(_context, LibZmq.ROUTER);
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
            while (true)
            {
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

        public Client(string endpoint)
        {
            LibZmq.EnsureLoaded();
            _socket = LibZmq.zmq_socket(_context, LibZmq.DEALER);
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
        }

        /// <summary>Receives one whole message, copying each frame out as the IpyRpc transport does.</summary>
        public int Receive()
        {
            int total = 0;
            ZmqMessage message;
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
