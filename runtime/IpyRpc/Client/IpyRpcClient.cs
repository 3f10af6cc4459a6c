using System.Collections.Concurrent;
using System.Text;
using System.Text.Json;
using IpyRpc.Formatting;
using IpyRpc.MessagePack;
using IpyRpc.Protocol;
using IpyRpc.Transports;

namespace IpyRpc;

/// <summary>
/// A connection to an IpyRpc server. On connect it learns every function with its docstrings
/// (<see cref="Functions"/>, <see cref="Help(string)"/>); calls can be dynamic (<see cref="CallAsync{T}(string, object?[])"/>)
/// or typed through a generated proxy (<see cref="Proxy{T}"/>). Remote output is written to the
/// local console as it arrives; remote exceptions are rethrown as <see cref="RemoteException"/>.
/// Many calls may be in flight at once over one client.
/// </summary>
public sealed partial class IpyRpcClient : IAsyncDisposable
{
    private readonly IMessageChannel _channel;
    private readonly ConcurrentDictionary<ulong, PendingCall> _pending = new();
    private readonly CancellationTokenSource _closing = new();
    private readonly Func<ValueTask>? _onDispose;
    private Task _reader = Task.CompletedTask;
    private long _nextId;
    private Exception? _broken;
    private IReadOnlyList<FunctionDescriptor> _functions = [];

    private IpyRpcClient(IMessageChannel channel, IpyRpcClientOptions options, Func<ValueTask>? onDispose)
    {
        _channel = channel;
        Options = options;
        _onDispose = onDispose;
    }

    /// <summary>The options the client was created with.</summary>
    public IpyRpcClientOptions Options { get; }

    /// <summary>Every function the server has, with its signature and docs, as of connecting (or <see cref="RefreshAsync"/>).</summary>
    public IReadOnlyList<FunctionDescriptor> Functions => _functions;

    /// <summary>The protocol version agreed with the server.</summary>
    public int ProtocolVersionInUse { get; private set; }

    /// <summary>What the server called itself in its hello.</summary>
    public string? ServerAgent { get; private set; }

    /// <summary>Connects over <paramref name="channel"/>: says hello, agrees a version and fetches the function list.</summary>
    public static Task<IpyRpcClient> ConnectAsync(IMessageChannel channel, IpyRpcClientOptions? options = null, CancellationToken cancellationToken = default)
        => ConnectAsync(channel, options, null, cancellationToken);

    /// <summary>
    /// Connects to a server in this process. Messages still go through bytes (encoded and decoded
    /// as on any transport), so this is the real protocol, minus the network.
    /// </summary>
    public static Task<IpyRpcClient> ConnectInProcessAsync(IpyRpcServer server, IpyRpcClientOptions? options = null, CancellationToken cancellationToken = default)
    {
        options ??= new IpyRpcClientOptions();
        (IMessageChannel client, IMessageChannel serverEnd) = InProcessTransport.CreatePair(options.MaxMessageBytes, server.Options.MaxMessageBytes);
        var stop = new CancellationTokenSource();
        Task serving = server.ServeAsync(serverEnd, stop.Token);
        return ConnectAsync(client, options, async () =>
        {
            await client.DisposeAsync().ConfigureAwait(false);
            stop.Cancel();
            await serving.ConfigureAwait(false);
            await serverEnd.DisposeAsync().ConfigureAwait(false);
            stop.Dispose();
        }, cancellationToken);
    }

    /// <summary>For transports: connects over a channel and runs <paramref name="onDispose"/> when the client is disposed.</summary>
    public static async Task<IpyRpcClient> ConnectAsync(IMessageChannel channel, IpyRpcClientOptions? options, Func<ValueTask>? onDispose, CancellationToken cancellationToken = default)
    {
        var client = new IpyRpcClient(channel, options ?? new IpyRpcClientOptions(), onDispose);
        if (channel is IPushMessageChannel push)
        {
            push.StartReceiving(client.Dispatch, e => client.Close(e is null ? new IpyRpcConnectionException("The connection was closed.") : new IpyRpcConnectionException("The connection failed: " + e.Message, e)));
        }
        else
        {
            client._reader = Task.Run(client.ReadLoopAsync, CancellationToken.None);
        }
        try
        {
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            timeout.CancelAfter(client.Options.ConnectTimeout);
            byte[]? clientNonce = client.Options.SharedSecret is null ? null : SharedSecretProof.NewNonce();
            IpyRpcMessage hello = await client.RequestAsync(new IpyRpcMessage { Kind = MessageKind.Hello, Versions = ProtocolVersion.Supported, Agent = "ipyrpc-dotnet-client/" + ProtocolVersion.Current, Nonce = clientNonce }, "hello", null, timeout.Token).ConfigureAwait(false);
            client.ProtocolVersionInUse = hello.Versions is [int v, ..] ? v : ProtocolVersion.Current;
            client.ServerAgent = hello.Agent;
            if (hello.Auth?.Contains(SharedSecretProof.Scheme) == true)
            {
                await client.ProveSecretAsync(hello, clientNonce, timeout.Token).ConfigureAwait(false);
            }
            await client.RefreshAsync(timeout.Token).ConfigureAwait(false);
            return client;
        }
        catch
        {
            await client.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>Answers the server's shared-secret challenge, after checking the server's own proof.</summary>
    private async Task ProveSecretAsync(IpyRpcMessage hello, byte[]? clientNonce, CancellationToken cancellationToken)
    {
        static IpyRpcUnauthorizedException Refused(string message) => new(new RemoteError { Code = ErrorCodes.Unauthorized, Message = message }, "connect");
        if (Options.SharedSecret is not { } secret || clientNonce is null)
        {
            throw Refused("The server requires a shared secret: set IpyRpcClientOptions.SharedSecret to the server's.");
        }

        byte[] key = SharedSecretProof.Key(secret);
        if (hello.Nonce is not { } serverNonce || hello.Proof is not { } serverProof
            || !SharedSecretProof.Matches(SharedSecretProof.Server(key, clientNonce, serverNonce.Span), serverProof.Span))
        {
            throw Refused("The server's proof does not match this shared secret: the secrets differ, or this is not the server you meant to reach.");
        }

        var proof = new Dictionary<string, object?>
        {
            ["scheme"] = SharedSecretProof.Scheme,
            ["proof"] = SharedSecretProof.Client(key, serverNonce.Span, clientNonce),
            ["name"] = Options.ClientName,
        };
        await RequestAsync(new IpyRpcMessage { Kind = MessageKind.Auth, Parts = [Jobs.JobCodec.Encode(proof, Serialization.MessagePack)] }, "auth", null, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Fetches the function list again (after the server registered more).</summary>
    public async Task RefreshAsync(CancellationToken cancellationToken = default)
    {
        IpyRpcMessage reply = await RequestAsync(new IpyRpcMessage { Kind = MessageKind.Describe, Serialization = Options.Serialization }, "describe", null, cancellationToken).ConfigureAwait(false);
        _functions = DescriptorCodec.Decode(reply.Body.Span, reply.Serialization);
    }

    /// <summary>The descriptor of <paramref name="function"/>.</summary>
    /// <exception cref="KeyNotFoundException">The server has no such function.</exception>
    public FunctionDescriptor Describe(string function)
        => _functions.FirstOrDefault(f => f.Name == function) ?? throw new KeyNotFoundException($"The server has no function named '{function}'.");

    /// <summary>Readable help for one function, like Python's <c>help()</c>: signature, summary, parameters, returns.</summary>
    public string Help(string function) => Describe(function).Help();

    /// <summary>Readable help for every function.</summary>
    public string Help() => string.Join(Environment.NewLine, _functions.Select(f => f.Help()));

    /// <summary>Creates a generated typed proxy over this client.</summary>
    public T Proxy<T>() where T : IIpyRpcProxy<T> => T.Create(this);

    /// <summary>Calls <paramref name="function"/> with positional arguments; the result is converted to <typeparamref name="T"/>.</summary>
    public Task<T> CallAsync<T>(string function, params object?[] args) => CallAsync<T>(function, args, null, CancellationToken.None);

    /// <summary>Calls <paramref name="function"/> with positional arguments, options and cancellation.</summary>
    public Task<T> CallAsync<T>(string function, object?[] args, CallOptions? options, CancellationToken cancellationToken = default)
    {
        var arguments = new IpyRpcArguments();
        foreach (object? a in args) arguments.Add(a, Formatters.Object);
        return InvokeAsync(function, arguments, FormatterRegistry.Get<T>(), options, cancellationToken);
    }

    /// <summary>Calls <paramref name="function"/> and returns its result as plain data (numbers, strings, arrays, dictionaries).</summary>
    public Task<object?> CallAsync(string function, params object?[] args) => CallAsync<object?>(function, args, null, CancellationToken.None);

    /// <summary>Calls <paramref name="function"/> with named arguments.</summary>
    public Task<T> CallNamedAsync<T>(string function, IReadOnlyDictionary<string, object?> args, CallOptions? options = null, CancellationToken cancellationToken = default)
    {
        var arguments = new IpyRpcArguments();
        foreach (KeyValuePair<string, object?> a in args) arguments.Add(a.Key, a.Value, Formatters.Object);
        return InvokeAsync(function, arguments, FormatterRegistry.Get<T>(), options, cancellationToken);
    }

    /// <summary>Calls a function whose result is nil (a <see langword="void"/> method).</summary>
    public async Task InvokeAsync(string function, IpyRpcArguments arguments, CallOptions? options = null, CancellationToken cancellationToken = default)
        => await InvokeAsync(function, arguments, Formatters.Object, options, cancellationToken).ConfigureAwait(false);

    /// <summary>Calls a function with typed arguments and a typed result. Generated proxies use this.</summary>
    public async Task<TResult> InvokeAsync<TResult>(string function, IpyRpcArguments arguments, IpyRpcFormatter<TResult> result, CallOptions? options = null, CancellationToken cancellationToken = default)
    {
        Serialization serialization = options?.Serialization ?? Options.Serialization;
        TimeSpan? timeout = options?.Timeout ?? Options.DefaultTimeout;
        var call = new IpyRpcMessage
        {
            Kind = MessageKind.Call,
            Function = function,
            Serialization = serialization,
            TimeoutMs = timeout is { } t ? (long)Math.Ceiling(t.TotalMilliseconds) : null,
            Parts = [arguments.Encode(serialization)],
        };

        IpyRpcMessage reply = await RequestAsync(call, function, options?.Output ?? Options.Output ?? WriteToConsole, cancellationToken, timeout).ConfigureAwait(false);
        return Decode(reply, result, function);
    }

    internal static T Decode<T>(IpyRpcMessage reply, IpyRpcFormatter<T> formatter, string function)
    {
        try
        {
            if (reply.Serialization == Serialization.Json)
            {
                var reader = new Utf8JsonReader(reply.Body.Span, new JsonReaderOptions { MaxDepth = 128 });
                Formatting.Json.JsonRead.Next(ref reader);
                return formatter.Read(ref reader);
            }

            var r = new MessagePackReader(reply.Body.Span) { MaxDepth = 128 };
            return formatter.Read(ref r);
        }
        catch (Exception e) when (e is IpyRpcSerializationException or JsonException)
        {
            throw new IpyRpcException(new RemoteError
            {
                Code = ErrorCodes.BadMessage,
                Message = $"The result could not be read as {TypeNames.Display(typeof(T))}: {e.Message}",
            }, function, e);
        }
    }

    private Task<IpyRpcMessage> RequestAsync(IpyRpcMessage message, string what, Action<OutputStream, string>? output, CancellationToken cancellationToken, TimeSpan? timeout = null)
        => RequestAsync(message, what, new PendingCall(output), cancellationToken, timeout);

    /// <summary>Sends a request and waits for its result (its error is thrown as the matching <see cref="IpyRpcException"/>).</summary>
    internal Task<IpyRpcMessage> RequestAsync(IpyRpcMessage message, string what, Action<IpyRpcMessage>? output, CancellationToken cancellationToken)
        => RequestAsync(message, what, new PendingCall(null, output), cancellationToken, null);

    private async Task<IpyRpcMessage> RequestAsync(IpyRpcMessage message, string what, PendingCall pending, CancellationToken cancellationToken, TimeSpan? timeout)
    {
        if (_broken is not null)
        {
            throw new IpyRpcConnectionException("The connection to the server is closed: " + _broken.Message, _broken);
        }

        ulong id = (ulong)Interlocked.Increment(ref _nextId);
        _pending[id] = pending;
        IpyRpcMessage withId = message with { Id = id };

        using var deadline = timeout is { } t ? new CancellationTokenSource(t) : null;
        using CancellationTokenRegistration onCancel = cancellationToken.Register(static s => ((PendingCall)s!).Result.TrySetCanceled(), pending);
        using CancellationTokenRegistration onDeadline = deadline?.Token.Register(static s => ((PendingCall)s!).TimedOut(), pending) ?? default;
        try
        {
            await _channel.SendAsync(withId, cancellationToken).ConfigureAwait(false);
            IpyRpcMessage reply = await pending.Result.Task.ConfigureAwait(false);
            if (reply.Kind == MessageKind.Error)
            {
                throw IpyRpcException.FromRemote(RemoteError.Decode(reply.Body.Span, reply.Serialization), message.Function ?? what);
            }

            return reply;
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested || pending.IsTimedOut)
        {
            if (message.Kind is MessageKind.Call or MessageKind.Attach)
            {
                // Tell the server, so the function's CancellationToken fires and the job stops (or, for an attach, it stops following).
                _ = SendQuietlyAsync(new IpyRpcMessage { Kind = MessageKind.Cancel, Id = id });
            }

            if (pending.IsTimedOut && !cancellationToken.IsCancellationRequested)
            {
                throw new IpyRpcTimeoutException(new RemoteError { Code = ErrorCodes.Timeout, Message = $"No reply within {timeout}." }, message.Function ?? what);
            }

            throw;
        }
        finally
        {
            _pending.TryRemove(id, out _);
        }
    }

    private async Task SendQuietlyAsync(IpyRpcMessage message)
    {
        try
        {
            await _channel.SendAsync(message).ConfigureAwait(false);
        }
        catch (Exception e) when (e is IpyRpcConnectionException or ObjectDisposedException or IOException or OperationCanceledException)
        {
        }
    }

    private async Task ReadLoopAsync()
    {
        Exception reason = new IpyRpcConnectionException("The server closed the connection.");
        try
        {
            while (true)
            {
                IpyRpcMessage? message;
                try
                {
                    message = await _channel.ReceiveAsync(_closing.Token).ConfigureAwait(false);
                }
                catch (ProtocolException e)
                {
                    if (e.Id != 0 && _pending.TryGetValue(e.Id, out PendingCall? failed))
                    {
                        failed.Result.TrySetException(IpyRpcException.FromRemote(new RemoteError { Code = e.Code, Message = e.Message }, null));
                    }

                    continue;
                }

                if (message is null)
                {
                    break;
                }

                Dispatch(message);
            }
        }
        catch (OperationCanceledException) when (_closing.IsCancellationRequested)
        {
            reason = new IpyRpcConnectionException("The client was disposed.");
        }
        catch (Exception e)
        {
            reason = new IpyRpcConnectionException("The connection failed: " + e.Message, e);
        }

        Close(reason);
    }

    private void Close(Exception reason)
    {
        _broken ??= reason;
        foreach (PendingCall p in _pending.Values)
        {
            p.Result.TrySetException(reason);
        }
    }

    // With a push channel this runs on the transport's receiving thread: output handlers should be quick.
    private void Dispatch(IpyRpcMessage message)
    {
        switch (message.Kind)
        {
            case MessageKind.Output:
                if (_pending.TryGetValue(message.Id, out PendingCall? call))
                {
                    try
                    {
                        if (call.RawOutput is { } raw) raw(message);
                        else call.Output?.Invoke(message.Stream, Encoding.UTF8.GetString(message.Body.Span));
                    }
                    catch (Exception e) when (e is not OutOfMemoryException)
                    {
                        // A failing output handler must not take the connection down.
                    }
                }

                break;
            case MessageKind.Result:
            case MessageKind.Error:
            case MessageKind.Hello:
            case MessageKind.Pong:
                if (_pending.TryGetValue(message.Id, out PendingCall? done))
                {
                    done.Result.TrySetResult(message);
                }

                break;
            case MessageKind.Call:
                // The protocol lets servers call clients; this client exports nothing yet.
                _ = SendQuietlyAsync(new IpyRpcMessage
                {
                    Kind = MessageKind.Error,
                    Id = message.Id,
                    Parts = [new RemoteError { Code = ErrorCodes.UnknownFunction, Message = $"This client exports no functions (asked for '{message.Function}')." }.Encode(Serialization.MessagePack)],
                });
                break;
        }
    }

    /// <summary>Writes remote output to this process's console.</summary>
    public static void WriteToConsole(OutputStream stream, string text)
    {
        TextWriter writer = stream == OutputStream.Stderr ? Console.Error : Console.Out;
        writer.Write(text);
        writer.Flush();
    }

    /// <summary>Closes the connection. Calls still in flight fail with <see cref="IpyRpcConnectionException"/>.</summary>
    public async ValueTask DisposeAsync()
    {
        if (_closing.IsCancellationRequested) return;
        _closing.Cancel();
        await _channel.DisposeAsync().ConfigureAwait(false);
        try
        {
            await _reader.ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
        }

        if (_onDispose is not null)
        {
            await _onDispose().ConfigureAwait(false);
        }

        _closing.Dispose();
    }

    private sealed class PendingCall(Action<OutputStream, string>? output, Action<IpyRpcMessage>? rawOutput = null)
    {
        private int _timedOut;

        public TaskCompletionSource<IpyRpcMessage> Result { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public Action<OutputStream, string>? Output { get; } = output;

        public Action<IpyRpcMessage>? RawOutput { get; } = rawOutput;

        public bool IsTimedOut => Volatile.Read(ref _timedOut) == 1;

        public void TimedOut()
        {
            Volatile.Write(ref _timedOut, 1);
            Result.TrySetCanceled();
        }
    }
}
