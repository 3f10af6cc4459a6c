using System.Threading.Channels;
using IpyRpc.Protocol;

namespace IpyRpc.Transports;

/// <summary>
/// Two connected channels in one process. Every message is encoded to the stream block format on
/// send and decoded on receive, exactly as over a socket, so in-process calls exercise the real
/// protocol (and its limits) rather than passing objects.
/// </summary>
public static class InProcessTransport
{
    /// <summary>Creates a connected pair of channels; each end refuses incoming messages over its own limit.</summary>
    public static (IMessageChannel Client, IMessageChannel Server) CreatePair(
        long clientMaxMessageBytes = ProtocolVersion.DefaultMaxMessageBytes,
        long serverMaxMessageBytes = ProtocolVersion.DefaultMaxMessageBytes)
    {
        var toServer = Channel.CreateUnbounded<Frame>(new UnboundedChannelOptions { SingleReader = true });
        var toClient = Channel.CreateUnbounded<Frame>(new UnboundedChannelOptions { SingleReader = true });
        return (new End(toServer.Writer, toClient.Reader, clientMaxMessageBytes), new End(toClient.Writer, toServer.Reader, serverMaxMessageBytes));
    }

    /// <summary>A framed message on its way, with the pooled arrays it lives in.</summary>
    internal readonly record struct Frame(ReadOnlyMemory<byte> Bytes, PooledParts? Pooled);

    /// <summary>One end of an in-process connection; <see cref="SendRawAsync"/> lets tests send arbitrary bytes.</summary>
    public sealed class End : IMessageChannel
    {
        private readonly ChannelWriter<Frame> _out;
        private readonly ChannelReader<Frame> _in;
        private readonly long _maxMessageBytes;

        internal End(ChannelWriter<Frame> output, ChannelReader<Frame> input, long maxMessageBytes)
        {
            _out = output;
            _in = input;
            _maxMessageBytes = maxMessageBytes;
        }

        /// <inheritdoc/>
        public ValueTask SendAsync(IpyRpcMessage message, CancellationToken cancellationToken = default)
        {
            // A large message is framed into a pooled array, which the receiving side's last reader gives back.
            ReadOnlyMemory<byte> framed = MessageCodec.EncodeFramed(message, pooling: true, out PooledParts? pooled);
            message.Pooled?.Release(); // its parts are copied: the sender's arrays can go back
            return _out.TryWrite(new Frame(framed, pooled)) ? default : throw new IpyRpcConnectionException("The in-process connection is closed.");
        }

        /// <summary>In process, a closed end is known at once: no heartbeats needed.</summary>
        public bool NeedsHeartbeat => false;

        /// <summary>Sends bytes as they are, whether or not they are a valid message.</summary>
        public ValueTask SendRawAsync(byte[] bytes, CancellationToken cancellationToken = default)
            => _out.TryWrite(new Frame(bytes, null)) ? default : throw new IpyRpcConnectionException("The in-process connection is closed.");

        /// <inheritdoc/>
        [System.Runtime.CompilerServices.AsyncMethodBuilder(typeof(System.Runtime.CompilerServices.PoolingAsyncValueTaskMethodBuilder<>))] // awaited once per message: its state is reused
        public async ValueTask<IpyRpcMessage?> ReceiveAsync(CancellationToken cancellationToken = default)
        {
            if (!await _in.WaitToReadAsync(cancellationToken).ConfigureAwait(false) || !_in.TryRead(out Frame frame))
            {
                return null;
            }

            return MessageCodec.DecodeFramed(frame.Bytes, _maxMessageBytes, frame.Pooled);
        }

        /// <inheritdoc/>
        public ValueTask DisposeAsync()
        {
            _out.TryComplete();
            return default;
        }
    }
}
