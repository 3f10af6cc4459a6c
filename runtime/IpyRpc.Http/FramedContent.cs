using System.Net;
using IpyRpc.Protocol;

namespace IpyRpc.Http;

/// <summary>
/// A request body that is a large message in the stream block format, written from the message's own parts (no copy of
/// them into one array of the message's size). The message's pooled parts go back once the content is disposed and no
/// write of it is running: the handler may write a request's content again (a retry on a fresh connection), and may
/// still be writing it when the response has already come.
/// </summary>
internal sealed class FramedContent : HttpContent
{
    private const int Disposed = int.MinValue;
    private readonly IpyRpcMessage _message;
    private readonly FramedPieces _pieces;
    private int _writing; // writes running, with Disposed added once the content is disposed
    private int _disposed;

    public FramedContent(IpyRpcMessage message)
    {
        _message = message;
        _pieces = MessageCodec.FramePieces(message);
    }

    protected override async Task SerializeToStreamAsync(Stream stream, TransportContext? context, CancellationToken cancellationToken)
    {
        Begin();
        try
        {
            for (int i = 0; i < _pieces.Count; i++)
            {
                await stream.WriteAsync(_pieces[i], cancellationToken).ConfigureAwait(false);
            }
        }
        finally
        {
            End();
        }
    }

    protected override Task SerializeToStreamAsync(Stream stream, TransportContext? context)
        => SerializeToStreamAsync(stream, context, CancellationToken.None);

    protected override void SerializeToStream(Stream stream, TransportContext? context, CancellationToken cancellationToken)
    {
        Begin();
        try
        {
            for (int i = 0; i < _pieces.Count; i++)
            {
                stream.Write(_pieces[i].Span);
            }
        }
        finally
        {
            End();
        }
    }

    protected override bool TryComputeLength(out long length)
    {
        length = _pieces.Length;
        return true;
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing && Interlocked.Exchange(ref _disposed, 1) == 0 && Interlocked.Add(ref _writing, Disposed) == Disposed)
        {
            _message.Pooled?.Release(); // nothing writes it now or will
        }

        base.Dispose(disposing);
    }

    private void Begin()
    {
        if (Interlocked.Increment(ref _writing) < 0)
        {
            Interlocked.Decrement(ref _writing); // disposed: its parts may be gone already
            throw new ObjectDisposedException(nameof(FramedContent));
        }
    }

    private void End()
    {
        if (Interlocked.Decrement(ref _writing) == Disposed)
        {
            _message.Pooled?.Release(); // the last write of a content disposed while it ran
        }
    }
}
