using IpyRpc.Formatting;
using IpyRpc.Jobs;
using IpyRpc.Protocol;

namespace IpyRpc;

public abstract partial class IpyRpcPeer
{
    /// <summary>
    /// Submits a call as a job and returns at once with a handle to it: the job runs on even if this
    /// caller disconnects, and any caller can attach to it later by <see cref="IpyRpcJob{T}.Id"/>.
    /// </summary>
    public Task<IpyRpcJob<T>> SubmitAsync<T>(string function, params object?[] args) => SubmitAsync<T>(function, args, null, CancellationToken.None);

    /// <summary>Submits a call with positional arguments as a job, with options and cancellation (of the submission, not the job).</summary>
    public Task<IpyRpcJob<T>> SubmitAsync<T>(string function, object?[] args, CallOptions? options, CancellationToken cancellationToken = default)
    {
        var arguments = new IpyRpcArguments();
        foreach (object? a in args) arguments.Add(a, Formatters.Object);
        return SubmitAsync(function, arguments, FormatterRegistry.Get<T>(), options, cancellationToken);
    }

    /// <summary>Submits a call with named arguments as a job.</summary>
    public Task<IpyRpcJob<T>> SubmitNamedAsync<T>(string function, IReadOnlyDictionary<string, object?> args, CallOptions? options = null, CancellationToken cancellationToken = default)
    {
        var arguments = new IpyRpcArguments();
        foreach (KeyValuePair<string, object?> a in args) arguments.Add(a.Key, a.Value, Formatters.Object);
        return SubmitAsync(function, arguments, FormatterRegistry.Get<T>(), options, cancellationToken);
    }

    /// <summary>
    /// Submits a call with typed arguments as a job; the handle's result is read with <paramref name="result"/>.
    /// <see cref="CallOptions.Timeout"/> becomes the job's deadline, counted from now. Generated proxies use this.
    /// </summary>
    public async Task<IpyRpcJob<TResult>> SubmitAsync<TResult>(string function, IpyRpcArguments arguments, IpyRpcFormatter<TResult> result, CallOptions? options = null, CancellationToken cancellationToken = default)
    {
        Serialization serialization = options?.Serialization ?? SerializationFor(function);
        TimeSpan? timeout = TimeoutFor(options);
        var submit = new IpyRpcMessage
        {
            Kind = MessageKind.Submit,
            Function = function,
            Serialization = serialization,
            TimeoutMs = timeout is { } t ? (long)Math.Ceiling(t.TotalMilliseconds) : null,
            Trace = System.Diagnostics.Activity.Current?.Id, // the job joins the submitter's trace, if there is one
            ReturnPointer = options?.ReturnPointer,
            PointerTtlMs = PointerTtlMs(options),
            Parts = [arguments.Encode(serialization)],
        };

        IpyRpcMessage reply;
        try
        {
            reply = await RequestAsync(submit, function, (Action<IpyRpcMessage>?)null, cancellationToken).ConfigureAwait(false);
        }
        catch (IpyRpcProtocolException e) when (e.Code == ErrorCodes.UnsupportedSerialization && options?.Serialization is null)
        {
            // Refused unread, as a call can be (InvokeCoreAsync): the function list again, and the request once more.
            if (!await RelearnAsync(function, serialization, cancellationToken).ConfigureAwait(false)) throw;
            return await SubmitAsync(function, arguments, result, (options ?? new CallOptions()) with { Serialization = SerializationFor(function) }, cancellationToken).ConfigureAwait(false);
        }

        return new IpyRpcJob<TResult>(this, ReadInfo(reply, function), result, options);
    }

    /// <summary>
    /// A handle to a job by id, for instance one submitted before a disconnect or by another client,
    /// even to a server that restarted since (with a durable queue). Waiting on it replays the job's
    /// output so far, then the rest live, then its outcome.
    /// </summary>
    /// <exception cref="IpyRpcNotFoundException">No queue of the server knows the job (any more).</exception>
    public async Task<IpyRpcJob<T>> AttachAsync<T>(string jobId, CallOptions? options = null, CancellationToken cancellationToken = default)
        => new IpyRpcJob<T>(this, await GetJobAsync(jobId, false, cancellationToken).ConfigureAwait(false), FormatterRegistry.Get<T>(), options);

    /// <summary>A job's info: state, times, attempts, worker, and with <paramref name="withOutput"/> the output recorded so far.</summary>
    /// <exception cref="IpyRpcNotFoundException">No queue of the server knows the job (any more).</exception>
    public async Task<JobInfo> GetJobAsync(string jobId, bool withOutput = false, CancellationToken cancellationToken = default)
    {
        var status = new IpyRpcMessage { Kind = MessageKind.Status, JobId = jobId, After = withOutput ? 0 : null, Serialization = DefaultSerialization };
        return ReadInfo(await RequestAsync(status, "status", (Action<IpyRpcMessage>?)null, cancellationToken).ConfigureAwait(false), "status");
    }

    /// <summary>The jobs the server's queues remember, newest first.</summary>
    public async Task<IReadOnlyList<JobInfo>> ListJobsAsync(JobQuery? query = null, CancellationToken cancellationToken = default)
    {
        var filter = new Dictionary<string, object?> { ["limit"] = (long)(query?.Limit ?? 100) };
        if (query?.State is { } state) filter["state"] = state.WireName();
        if (query?.Function is { } function) filter["function"] = function;
        var list = new IpyRpcMessage { Kind = MessageKind.List, Serialization = DefaultSerialization, Parts = [JobCodec.Encode(filter, DefaultSerialization)] };
        IpyRpcMessage reply = await RequestAsync(list, "list", (Action<IpyRpcMessage>?)null, cancellationToken).ConfigureAwait(false);
        try
        {
            return JobCodec.Decode(reply.Body.Span, reply.Serialization) is object?[] items
                ? [.. items.Select(JobCodec.FromMap)]
                : throw new IpyRpcSerializationException("A job list must be an array");
        }
        catch (Exception e) when (e is IpyRpcSerializationException or System.Text.Json.JsonException)
        {
            throw Malformed("list", e);
        }
    }

    /// <summary>Cancels a job by id, whoever submitted it: a queued job never runs; a running one has its token cancelled on whichever worker runs it.</summary>
    /// <returns>False when the job had already finished.</returns>
    /// <exception cref="IpyRpcNotFoundException">No queue of the server knows the job (any more).</exception>
    public async Task<bool> CancelJobAsync(string jobId, CancellationToken cancellationToken = default)
    {
        var cancel = new IpyRpcMessage { Kind = MessageKind.Cancel, JobId = jobId, Serialization = DefaultSerialization };
        IpyRpcMessage reply = await RequestAsync(cancel, "cancel", (Action<IpyRpcMessage>?)null, cancellationToken).ConfigureAwait(false);
        return JobCodec.Decode(reply.Body.Span, reply.Serialization) is true;
    }

    /// <summary>
    /// Follows a job: replays its events after <paramref name="after"/>, then the rest live; returns the result message.
    /// A stream's items go to <paramref name="items"/> (dropped without it: the result is then their count); its progress
    /// reports to <paramref name="progress"/> (dropped without it).
    /// </summary>
    internal Task<IpyRpcMessage> FollowAsync(string jobId, string function, long after, Action<IpyRpcMessage> output, CancellationToken cancellationToken, Action<IpyRpcMessage>? items = null, Action<IpyRpcMessage>? progress = null)
    {
        var attach = new IpyRpcMessage { Kind = MessageKind.Attach, JobId = jobId, After = after, Serialization = DefaultSerialization };
        return RequestAsync(attach, function, output, cancellationToken, items, progress);
    }

    private static JobInfo ReadInfo(IpyRpcMessage reply, string what)
    {
        try
        {
            return JobCodec.FromMap(JobCodec.Decode(reply.Body.Span, reply.Serialization));
        }
        catch (Exception e) when (e is IpyRpcSerializationException or System.Text.Json.JsonException)
        {
            throw Malformed(what, e);
        }
    }

    private static IpyRpcException Malformed(string what, Exception e) => new(new RemoteError
    {
        Code = ErrorCodes.BadMessage,
        Message = $"The server's answer to {what} could not be read: {e.Message}",
    }, what, e);
}
