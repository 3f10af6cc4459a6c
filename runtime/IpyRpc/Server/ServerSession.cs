using IpyRpc.Jobs;
using IpyRpc.Protocol;

namespace IpyRpc;

/// <summary>
/// The server's side of one connection: answers hellos and describes, turns calls into jobs and
/// relays their output and outcome, cancels on request. Transports create one per peer and feed
/// it messages; it sends through the callback it was given, which may be called concurrently.
/// </summary>
public sealed class ServerSession : IAsyncDisposable
{
    private readonly IpyRpcServer _server;
    private readonly Func<IpyRpcMessage, CancellationToken, ValueTask> _send;
    // Sessions are made per HTTP request, so they stay small: a plain dictionary under a lock, no token source.
    private readonly Dictionary<ulong, (IJobQueue Queue, string JobId)> _inFlight = [];
    private volatile bool _closed;

    internal ServerSession(IpyRpcServer server, Func<IpyRpcMessage, CancellationToken, ValueTask> send)
    {
        _server = server;
        _send = send;
    }

    /// <summary>How many calls of this session are running or queued.</summary>
    public int InFlight
    {
        get
        {
            lock (_inFlight) return _inFlight.Count;
        }
    }

    /// <summary>Handles one message from the peer. Never throws for bad input: the peer gets an error reply.</summary>
    public async ValueTask HandleAsync(IpyRpcMessage message)
    {
        try
        {
            switch (message.Kind)
            {
                case MessageKind.Hello:
                    await HelloAsync(message).ConfigureAwait(false);
                    break;
                case MessageKind.Describe:
                    await SendAsync(new IpyRpcMessage
                    {
                        Kind = MessageKind.Result,
                        Id = message.Id,
                        Serialization = message.Serialization,
                        Parts = [DescriptorCodec.Encode(_server.Functions, message.Serialization)],
                    }).ConfigureAwait(false);
                    break;
                case MessageKind.Call:
                    await CallAsync(message).ConfigureAwait(false);
                    break;
                case MessageKind.Cancel:
                    (IJobQueue Queue, string JobId) job;
                    bool found;
                    lock (_inFlight) found = _inFlight.TryGetValue(message.Id, out job);
                    if (found)
                    {
                        await job.Queue.CancelAsync(job.JobId).ConfigureAwait(false);
                    }

                    break;
                case MessageKind.Ping:
                    await SendAsync(new IpyRpcMessage { Kind = MessageKind.Pong, Id = message.Id }).ConfigureAwait(false);
                    break;
                case MessageKind.Event:
                case MessageKind.Pong:
                    break; // no reply is ever due
                default:
                    // Results, errors and output answer calls the server made; it has made none.
                    break;
            }
        }
        catch (ProtocolException e)
        {
            await ReplyErrorAsync(message.Id, message.Serialization, new RemoteError { Code = e.Code, Message = e.Message }).ConfigureAwait(false);
        }
    }

    /// <summary>Answers a message that could not be decoded, so the peer learns why.</summary>
    public ValueTask ReplyProtocolErrorAsync(ProtocolException error)
        => ReplyErrorAsync(error.Id, Serialization.MessagePack, new RemoteError { Code = error.Code, Message = error.Message });

    private ValueTask HelloAsync(IpyRpcMessage message)
    {
        IReadOnlyList<int> offered = message.Versions ?? [ProtocolVersion.Current];
        int chosen = ProtocolVersion.Supported.FirstOrDefault(offered.Contains);
        if (chosen == 0)
        {
            return ReplyErrorAsync(message.Id, message.Serialization, new RemoteError
            {
                Code = ErrorCodes.UnsupportedVersion,
                Message = $"No protocol version in common: the client offers {string.Join(", ", offered)}, the server speaks {string.Join(", ", ProtocolVersion.Supported)}.",
            });
        }

        return SendAsync(new IpyRpcMessage { Kind = MessageKind.Hello, Id = message.Id, Versions = [chosen], Agent = _server.Options.Agent });
    }

    private async ValueTask CallAsync(IpyRpcMessage message)
    {
        string name = message.Function!;
        if (_server.Find(name) is null)
        {
            await ReplyErrorAsync(message.Id, message.Serialization, _server.UnknownFunction(name)).ConfigureAwait(false);
            return;
        }

        FunctionOptions options = _server.OptionsFor(name);
        if (options.InputSerialization is { } input and not Serialization.Auto && input != message.Serialization)
        {
            await ReplyErrorAsync(message.Id, message.Serialization, new RemoteError
            {
                Code = ErrorCodes.UnsupportedSerialization,
                Message = $"{name} accepts {MessageCodec.SerializationName(input)} arguments only; this call used {MessageCodec.SerializationName(message.Serialization)}.",
            }).ConfigureAwait(false);
            return;
        }

        if (options.MaxArgumentBytes is { } max && message.Body.Length > max)
        {
            await ReplyErrorAsync(message.Id, message.Serialization, new RemoteError
            {
                Code = ErrorCodes.TooLarge,
                Message = $"The arguments of {name} are {message.Body.Length} bytes; it accepts at most {max}.",
            }).ConfigureAwait(false);
            return;
        }

        bool reused;
        lock (_inFlight) reused = _inFlight.ContainsKey(message.Id);
        if (reused)
        {
            await ReplyErrorAsync(message.Id, message.Serialization, new RemoteError
            {
                Code = ErrorCodes.BadMessage,
                Message = $"Call id {message.Id} is already in use by a call that has not finished.",
            }).ConfigureAwait(false);
            return;
        }

        TimeSpan? timeout = options.Timeout;
        if (message.TimeoutMs is long ms and > 0)
        {
            TimeSpan asked = TimeSpan.FromMilliseconds(ms);
            timeout = timeout is { } t && t < asked ? t : asked;
        }

        Serialization output = options.OutputSerialization is { } o and not Serialization.Auto ? o : message.Serialization;
        IJobQueue queue = _server.QueueFor(options);
        string jobId = queue is InMemoryJobQueue memory ? memory.NewId() : Guid.NewGuid().ToString("N");
        var request = new JobRequest
        {
            Id = jobId,
            Function = name,
            Arguments = message.Body,
            InputSerialization = message.Serialization,
            OutputSerialization = output,
            Timeout = timeout,
        };

        lock (_inFlight) _inFlight[message.Id] = (queue, jobId);
        try
        {
            await queue.EnqueueAsync(request, new CallRelay(this, message.Id, jobId)).ConfigureAwait(false);
        }
        catch (Exception e) when (e is ObjectDisposedException or OperationCanceledException or InvalidOperationException)
        {
            lock (_inFlight) _inFlight.Remove(message.Id);
            await ReplyErrorAsync(message.Id, message.Serialization, new RemoteError { Code = ErrorCodes.Cancelled, Message = "The server is shutting down: " + e.Message }).ConfigureAwait(false);
        }
    }

    private static IpyRpcMessage Final(ulong id, string jobId, JobOutcome outcome)
    {
        return outcome.State == JobState.Succeeded
            ? new IpyRpcMessage { Kind = MessageKind.Result, Id = id, JobId = jobId, Serialization = outcome.ResultSerialization, Parts = [outcome.Result] }
            : ErrorMessage(id, outcome.ResultSerialization, outcome.Error!, jobId);
    }

    /// <summary>
    /// Turns one job's events into messages to the caller, in order. A send that completes at once
    /// (ZeroMQ, in-process) happens right on the worker's thread: no hop. One that does not (an
    /// HTTP response write) queues the rest behind it.
    /// </summary>
    private sealed class CallRelay(ServerSession session, ulong id, string jobId) : IJobObserver
    {
        private readonly Queue<IpyRpcMessage> _pending = new();
        private bool _sending;

        public void OnOutput(OutputStream stream, string text) => Post(new IpyRpcMessage
        {
            Kind = MessageKind.Output,
            Id = id,
            Stream = stream,
            JobId = jobId,
            Serialization = Serialization.MessagePack,
            Parts = [System.Text.Encoding.UTF8.GetBytes(text)],
        });

        public void OnCompleted(JobOutcome outcome) => Post(Final(id, jobId, outcome));

        private void Post(IpyRpcMessage message)
        {
            lock (_pending)
            {
                _pending.Enqueue(message);
                if (_sending) return;
                _sending = true;
            }

            _ = DrainAsync();
        }

        private async Task DrainAsync()
        {
            while (true)
            {
                IpyRpcMessage next;
                lock (_pending)
                {
                    if (!_pending.TryDequeue(out next!))
                    {
                        _sending = false;
                        return;
                    }
                }

                await session.SendAsync(next).ConfigureAwait(false);
                if (next.Kind is MessageKind.Result or MessageKind.Error)
                {
                    // In flight until its last message is handed to the transport, so a shutdown can wait for it.
                    lock (session._inFlight) session._inFlight.Remove(id);
                }
            }
        }
    }

    private ValueTask ReplyErrorAsync(ulong id, Serialization serialization, RemoteError error, string? jobId = null)
        => SendAsync(ErrorMessage(id, serialization, error, jobId));

    private static IpyRpcMessage ErrorMessage(ulong id, Serialization serialization, RemoteError error, string? jobId) => new()
    {
        Kind = MessageKind.Error,
        Id = id,
        JobId = jobId,
        Serialization = serialization == Serialization.Json ? Serialization.Json : Serialization.MessagePack,
        Parts = [error.Encode(serialization == Serialization.Json ? Serialization.Json : Serialization.MessagePack)],
    };

    private async ValueTask SendAsync(IpyRpcMessage message)
    {
        try
        {
            // Sent even after close: a call cancelled by a shutdown still tells its caller so, where the transport is still up.
            ValueTask sending = _send(message, CancellationToken.None);
            if (sending.IsCompletedSuccessfully) return;
            await sending.ConfigureAwait(false);
        }
        catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException or IpyRpcConnectionException or IOException)
        {
            // The connection closed under us; nothing is left to tell.
        }
    }

    /// <summary>Closes the session: its queued and running calls are cancelled, since no one is left to receive their results.</summary>
    public async ValueTask DisposeAsync()
    {
        (IJobQueue Queue, string JobId)[] running;
        lock (_inFlight)
        {
            if (_closed && _inFlight.Count == 0) return;
            _closed = true;
            running = [.. _inFlight.Values];
        }

        foreach ((IJobQueue queue, string jobId) in running)
        {
            await queue.CancelAsync(jobId).ConfigureAwait(false);
        }
    }
}
