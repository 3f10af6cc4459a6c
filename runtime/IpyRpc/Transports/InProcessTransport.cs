using IpyRpc.Protocol;

namespace IpyRpc.Transports;

/// <summary>
/// Two connected channels in one process. Every message is encoded to the stream block format on
/// send and decoded on receive, exactly as over a socket, so in-process calls exercise the real
/// protocol (and its limits) rather than passing objects. While one call at a time is in flight, a request or
/// reply sent by a thread a receive loop lent (a caller's continuation, a job) is taken in on that same thread once
/// what it runs returns (<see cref="DeferredWakes"/>), so a run of calls wakes no other thread.
/// </summary>
public static class InProcessTransport
{
    /// <summary>Creates a connected pair of channels; each end refuses incoming messages over its own limit.</summary>
    public static (IMessageChannel Client, IMessageChannel Server) CreatePair(
        long clientMaxMessageBytes = ProtocolVersion.DefaultMaxMessageBytes,
        long serverMaxMessageBytes = ProtocolVersion.DefaultMaxMessageBytes)
    {
        var toServer = new FrameQueue();
        var toClient = new FrameQueue();
        var calls = new CallCount();
        return (new End(toServer, toClient, clientMaxMessageBytes, calls), new End(toClient, toServer, serverMaxMessageBytes, calls));
    }

    /// <summary>A framed message on its way, with the pooled arrays it lives in.</summary>
    internal readonly record struct Frame(ReadOnlyMemory<byte> Bytes, PooledParts? Pooled);

    /// <summary>
    /// The calls in flight on a connection, either way, as its ends see them go by. An estimate, good enough to tell a
    /// lone call: a call the peer never answers stays counted, and a result or error that answers no call (a submit's,
    /// a status request's, an undecodable message's) takes one off if any is counted.
    /// </summary>
    internal sealed class CallCount
    {
        private int _calls;

        /// <summary>A call goes out; whether it is the only one in flight.</summary>
        public bool Begin() => Interlocked.Increment(ref _calls) == 1;

        /// <summary>A final reply goes out; whether its call was the only one in flight.</summary>
        public bool End()
        {
            int calls;
            do
            {
                calls = Volatile.Read(ref _calls);
                if (calls <= 0) return false; // a reply to no call counted
            }
            while (Interlocked.CompareExchange(ref _calls, calls - 1, calls) != calls);
            return calls == 1;
        }
    }

    /// <summary>One end of an in-process connection; <see cref="SendRawAsync"/> lets tests send arbitrary bytes.</summary>
    public sealed class End : IMessageChannel
    {
        private readonly FrameQueue _out;
        private readonly FrameQueue _in;
        private readonly long _maxMessageBytes;
        private readonly CallCount _calls;

        internal End(FrameQueue output, FrameQueue input, long maxMessageBytes, CallCount calls)
        {
            _out = output;
            _in = input;
            _maxMessageBytes = maxMessageBytes;
            _calls = calls;
        }

        /// <inheritdoc/>
        public ValueTask SendAsync(IpyRpcMessage message, CancellationToken cancellationToken = default)
        {
            // A large message is framed into a pooled array, which the receiving side's last reader gives back.
            ReadOnlyMemory<byte> framed = MessageCodec.EncodeFramed(message, pooling: true, out PooledParts? pooled);
            message.Pooled?.Release(); // its parts are copied: the sender's arrays can go back
            // The request or reply of a lone call wakes its reader from this thread later, where this thread was lent
            // by a receive loop (DeferredWakes); output and other messages wake it now.
            bool lone = message.Kind switch
            {
                MessageKind.Call => _calls.Begin(),
                MessageKind.Result or MessageKind.Error => _calls.End(),
                _ => false,
            };
            // Work already queued to the thread pool (other callers going on to their next calls) means it is not alone for long.
            return _out.TryWrite(new Frame(framed, pooled), deferWake: lone && ThreadPool.PendingWorkItemCount == 0) ? default : throw new IpyRpcConnectionException("The in-process connection is closed.");
        }

        /// <summary>In process, a closed end is known at once: no heartbeats needed.</summary>
        public bool NeedsHeartbeat => false;

        /// <summary>Sends bytes as they are, whether or not they are a valid message.</summary>
        public ValueTask SendRawAsync(byte[] bytes, CancellationToken cancellationToken = default)
            => _out.TryWrite(new Frame(bytes, null), deferWake: false) ? default : throw new IpyRpcConnectionException("The in-process connection is closed.");

        /// <inheritdoc/>
        [System.Runtime.CompilerServices.AsyncMethodBuilder(typeof(System.Runtime.CompilerServices.PoolingAsyncValueTaskMethodBuilder<>))] // awaited once per message: its state is reused
        public async ValueTask<IpyRpcMessage?> ReceiveAsync(CancellationToken cancellationToken = default)
        {
            Frame frame;
            while (!_in.TryRead(out frame))
            {
                if (!await _in.WaitToReadAsync(cancellationToken).ConfigureAwait(false)) return null;
            }

            return MessageCodec.DecodeFramed(frame.Bytes, _maxMessageBytes, frame.Pooled);
        }

        /// <inheritdoc/>
        public ValueTask DisposeAsync()
        {
            _out.Complete();
            return default;
        }
    }
}
