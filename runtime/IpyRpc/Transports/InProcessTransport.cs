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
        var toServer = Channel.CreateUnbounded<byte[]>(new UnboundedChannelOptions { SingleReader = true });
        var toClient = Channel.CreateUnbounded<byte[]>(new UnboundedChannelOptions { SingleReader = true });
        return (new End(toServer.Writer, toClient.Reader, clientMaxMessageBytes), new End(toClient.Writer, toServer.Reader, serverMaxMessageBytes));
    }

    /// <summary>One end of an in-process connection; <see cref="SendRawAsync"/> lets tests send arbitrary bytes.</summary>
    public sealed class End : IMessageChannel
    {
        private readonly ChannelWriter<byte[]> _out;
        private readonly ChannelReader<byte[]> _in;
        private readonly long _maxMessageBytes;

        internal End(ChannelWriter<byte[]> output, ChannelReader<byte[]> input, long maxMessageBytes)
        {
            _out = output;
            _in = input;
            _maxMessageBytes = maxMessageBytes;
        }

        /// <inheritdoc/>
        public ValueTask SendAsync(IpyRpcMessage message, CancellationToken cancellationToken = default)
            => SendRawAsync(MessageCodec.EncodeFramed(message), cancellationToken);

        /// <summary>In process, a closed end is known at once: no heartbeats needed.</summary>
        public bool NeedsHeartbeat => false;

        /// <summary>Sends bytes as they are, whether or not they are a valid message.</summary>
        public ValueTask SendRawAsync(byte[] bytes, CancellationToken cancellationToken = default)
            => _out.TryWrite(bytes) ? default : throw new IpyRpcConnectionException("The in-process connection is closed.");

        /// <inheritdoc/>
        public async ValueTask<IpyRpcMessage?> ReceiveAsync(CancellationToken cancellationToken = default)
        {
            if (!await _in.WaitToReadAsync(cancellationToken).ConfigureAwait(false) || !_in.TryRead(out byte[]? bytes))
            {
                return null;
            }

            return MessageCodec.DecodeFramed(bytes, _maxMessageBytes);
        }

        /// <inheritdoc/>
        public ValueTask DisposeAsync()
        {
            _out.TryComplete();
            return default;
        }
    }
}
