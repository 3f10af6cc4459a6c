using IpyRpc.Formatting;

namespace IpyRpc;

// A call written as a typed proxy call, sent another way: submitted as a job, or for a pointer to its result.
// While the lambda runs on this thread, the proxy's InvokeAsync records its call instead of sending it.
public abstract partial class IpyRpcPeer
{
    [ThreadStatic]
    private static CapturedCall? t_capturing;

    /// <summary>
    /// Submits a typed proxy call as a job and returns at once with a handle to it: the job runs on if
    /// this caller disconnects, and any caller can attach to it by <see cref="IpyRpcJob{T}.Id"/>. Write the
    /// call as you would make it, <c>client.SubmitAsync(() =&gt; proxy.Simulate(12))</c>; it is not made,
    /// but submitted with its arguments and options (the options' timeout becomes the job's deadline,
    /// counted from now; the token cancels the submission, not the job).
    /// </summary>
    /// <param name="call">One call of a proxy over this peer (or of <see cref="CallAsync{T}(string, object?[])"/>), and nothing else.</param>
    /// <returns>The job's handle; await it (or <c>WaitAsync</c>) for the result.</returns>
    /// <exception cref="ArgumentException"><paramref name="call"/> is not exactly one call through this peer, or passes an <see cref="IProgress{T}"/> (a job reports to no one in particular: follow its reports with the job's <c>WaitAsync(progress)</c>).</exception>
    public Task<IpyRpcJob<T>> SubmitAsync<T>(Func<Task<T>> call)
    {
        CapturedCall c = ForJob(Capture(call));
        return SubmitAsync(c.Function, c.Arguments, c.ResultAs<T>(), c.Options, c.Token);
    }

    /// <summary>
    /// Submits a typed proxy call of a streaming function (one that returns <c>IAsyncEnumerable&lt;T&gt;</c>) as a job,
    /// <c>client.SubmitStreamAsync(() =&gt; proxy.Simulate(1_000_000))</c>: the call is recorded, not made. The job
    /// records the items as it makes them; read them with <see cref="IpyRpcJob{T}.ReadItemsAsync{TItem}"/>, now or later,
    /// from any client. Its result is how many items it made.
    /// </summary>
    /// <param name="call">One streaming call of a proxy over this peer, returned as it is (not filtered or transformed).</param>
    /// <returns>The job's handle.</returns>
    /// <exception cref="ArgumentException"><paramref name="call"/> is not exactly one streaming call through this peer, or passes an <see cref="IProgress{T}"/>.</exception>
    public Task<IpyRpcJob<long>> SubmitStreamAsync<TItem>(Func<IAsyncEnumerable<TItem>> call)
    {
        const string notOne = "The lambda must be exactly one streaming typed proxy call, as () => proxy.Function(arguments), returning its items as they are (not filtered or transformed).";
        CapturedCall c = ForJob(Capture(call, notOne, notOne));
        return SubmitAsync(c.Function, c.Arguments, c.ResultAs<long>(), c.Options, c.Token);
    }

    // A job reports to no one in particular: an IProgress argument would report nowhere.
    private static CapturedCall ForJob(CapturedCall c) => c.Arguments.ProgressHandler is null ? c
        : throw new ArgumentException("A submitted job reports its progress to no one in particular: leave out the IProgress argument, and follow its reports with the job's WaitAsync(progress).", "call");

    /// <summary>Submits a typed proxy call of a function that returns nothing as a job (see <see cref="SubmitAsync{T}(Func{Task{T}})"/>).</summary>
    /// <param name="call">One call of a proxy over this peer, and nothing else.</param>
    /// <returns>The job's handle; its result is <see langword="null"/>.</returns>
    /// <exception cref="ArgumentException"><paramref name="call"/> is not exactly one call through this peer, or passes an <see cref="IProgress{T}"/>.</exception>
    public Task<IpyRpcJob<object?>> SubmitAsync(Func<Task> call) => SubmitAsync<object?>(() => call() as Task<object?> ?? Task.FromResult<object?>(null));

    /// <summary>
    /// Makes a typed proxy call for a pointer to its result: the value stays with the process that
    /// computed it, to be fetched (whole or by rows) from there or passed to another call. Write the call
    /// as you would make it, <c>client.AsPointerAsync(() =&gt; proxy.Simulate(1_000_000, 8))</c>; its options
    /// apply (<see cref="CallOptions.PointerTimeToLive"/>: how long the holder keeps the value).
    /// </summary>
    /// <param name="call">One call of a proxy over this peer, and nothing else.</param>
    /// <returns>A pointer to the result.</returns>
    /// <exception cref="ArgumentException"><paramref name="call"/> is not exactly one call through this peer.</exception>
    public Task<RemotePointer<T>> AsPointerAsync<T>(Func<Task<T>> call)
    {
        CapturedCall c = Capture(call);
        _ = c.ResultAs<T>();
        return InvokeCoreAsync(c.Function, c.Arguments, RemotePointerFormatter<T>.Instance, CallOptions.ForPointer(c.Options), c.Token);
    }

    private CapturedCall Capture(Func<Task> call) => Capture(call,
        "The lambda made no call: write one typed proxy call, as () => proxy.Function(arguments).",
        "The lambda must be exactly one typed proxy call, as () => proxy.Function(arguments), returning that call's task (not awaiting it, not changing its result).");

    // Runs the lambda with this thread recording proxy calls instead of making them: it must make exactly one, through
    // this peer, and return what that call returned (the placeholder) untouched.
    private CapturedCall Capture<TReturned>(Func<TReturned> call, string noCall, string notOne)
        where TReturned : class
    {
        ArgumentNullException.ThrowIfNull(call);
        CapturedCall? outer = t_capturing;
        var capture = new CapturedCall();
        t_capturing = capture;
        TReturned returned;
        try
        {
            returned = call();
        }
        finally
        {
            t_capturing = outer;
        }

        if (capture.Count != 1 || !ReferenceEquals(returned, capture.Placeholder))
        {
            throw new ArgumentException(capture.Count == 0 ? noCall : notOne, nameof(call));
        }

        if (!ReferenceEquals(capture.Peer, this))
        {
            throw new ArgumentException("The call goes through another connection than the one it is sent with: use that proxy's own peer.", nameof(call));
        }

        return capture;
    }

    /// <summary>A call recorded instead of sent.</summary>
    private sealed class CapturedCall
    {
        public IpyRpcPeer? Peer;
        public string Function = "";
        public IpyRpcArguments Arguments = null!;
        public object? Result;
        public CallOptions? Options;
        public CancellationToken Token;
        public object? Placeholder;
        public int Count;

        public Task<TResult> Take<TResult>(IpyRpcPeer peer, string function, IpyRpcArguments arguments, IpyRpcFormatter<TResult> result, CallOptions? options, CancellationToken token)
        {
            Count++;
            (Peer, Function, Arguments, Result, Options, Token) = (peer, function, arguments, result, options, token);
            Task<TResult> placeholder = Task.FromCanceled<TResult>(new CancellationToken(true));
            Placeholder = placeholder;
            return placeholder;
        }

        /// <summary>Records a streaming call (its result is the item count); the stream it returns has no items.</summary>
        public IAsyncEnumerable<TItem> TakeStream<TItem>(IpyRpcPeer peer, string function, IpyRpcArguments arguments, CallOptions? options, CancellationToken token)
        {
            Count++;
            (Peer, Function, Arguments, Result, Options, Token) = (peer, function, arguments, Formatters.Int64, options, token);
            IAsyncEnumerable<TItem> placeholder = new Recorded<TItem>();
            Placeholder = placeholder;
            return placeholder;
        }

        private sealed class Recorded<TItem> : IAsyncEnumerable<TItem>, IAsyncEnumerator<TItem>
        {
            public TItem Current => default!;

            public IAsyncEnumerator<TItem> GetAsyncEnumerator(CancellationToken cancellationToken = default) => this;

            public ValueTask<bool> MoveNextAsync() => ValueTask.FromResult(false);

            public ValueTask DisposeAsync() => ValueTask.CompletedTask;
        }

        public IpyRpcFormatter<T> ResultAs<T>() => Result as IpyRpcFormatter<T>
            ?? throw new ArgumentException($"The call's result is read as {Result?.GetType().Name}, not as {typeof(T).Name}.");
    }
}
