using System.Buffers;
using System.Security.Claims;
using System.Text;
using System.Text.Json;
using System.Threading.Tasks.Sources;
using IpyRpc.Formatting;
using IpyRpc.MessagePack;
using IpyRpc.Protocol;
using Microsoft.AspNetCore.Connections.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace IpyRpc.Http;

/// <summary>
/// JSON-RPC 2.0 (https://www.jsonrpc.org/specification) over HTTP POST, so curl and any JSON-RPC
/// client can call an IpyRpc server. Positional and named params, notifications, batches, every
/// id type, the standard error codes, and <c>rpc.discover</c> (OpenRPC).
/// </summary>
/// <remarks>
/// The callee's output is available two ways without breaking plain clients: send the header
/// <c>IpyRpc-Output: include</c> to get an <c>output</c> member beside <c>result</c>, or
/// <c>Accept: application/x-ndjson</c> to get each piece as an <c>ipyrpc.output</c> notification
/// line while the call runs (and a stream's items and progress reports as <c>ipyrpc.items</c> and
/// <c>ipyrpc.progress</c> lines), then the response line. An error's <c>data</c> always carries the output.
/// Requests on one HTTP connection from one principal share a server session (see <see cref="CallsFor"/>).
/// </remarks>
internal sealed class JsonRpcEndpoint(IpyRpcServer server, IpyRpcHttpOptions options)
{
    private const string NdJson = "application/x-ndjson";

    private const string StoppingMessage = "The server is shutting down: the call was not queued and did not run. Make it again once the server is back.";

    public async Task HandleAsync(HttpContext context)
    {
        // One async method for the request and one for each call it carries: each level would keep its own state
        // on the heap, since every request waits for its job.
        HttpResponse response = context.Response;
        try
        {
            if (!HttpMethods.IsPost(context.Request.Method))
            {
                response.Headers.Allow = "POST";
                await WriteAsync(response, StatusCodes.Status405MethodNotAllowed, Error(null, -32600, $"JSON-RPC requests are sent with POST, not {context.Request.Method}."));
                return;
            }

            string? contentType = context.Request.ContentType;
            if (!IsJson(contentType))
            {
                await WriteAsync(response, StatusCodes.Status415UnsupportedMediaType, Error(null, -32600, $"Content-Type must be application/json, not {contentType ?? "missing"}."));
                return;
            }

            // The body in an array of its own, never a pooled one: a lone call's params are a slice of it that the
            // call's job keeps as its arguments after the request.
            ReadOnlyMemory<byte>? body = await BodyReader.ReadAsync(context, options.MaxJsonRequestBytes);
            if (body is null)
            {
                await WriteAsync(response, StatusCodes.Status413PayloadTooLarge, Error(null, ErrorCodes.ToJsonRpc(ErrorCodes.TooLarge), $"The request is larger than the limit of {options.MaxJsonRequestBytes} bytes."));
                return;
            }

            // The usual request, one well-formed call, is read in one pass without building a document; anything
            // else (a batch, an unknown or repeated member, a wrong type, malformed JSON) takes the document's path,
            // which says precisely what is wrong.
            bool isLone = LoneCall.TryRead(body.Value, options.MaxJsonDepth, out LoneCall lone);
            JsonDocument? document = null;
            if (!isLone)
            {
                try
                {
                    document = JsonDocument.Parse(body.Value, new JsonDocumentOptions { MaxDepth = options.MaxJsonDepth });
                }
                catch (JsonException e)
                {
                    string why = e.Message.Contains("depth", StringComparison.OrdinalIgnoreCase)
                        ? $"the JSON is nested deeper than {options.MaxJsonDepth} levels"
                        : e.Message;
                    await WriteAsync(response, StatusCodes.Status200OK, Error(null, -32700, "Parse error: " + why));
                    return;
                }

                // RFC 8259 JSON is UTF-8. A lone request with invalid UTF-8 is a parse error; in a batch, only
                // the requests that hold it are invalid, and the others are answered.
                if (!System.Text.Unicode.Utf8.IsValid(body.Value.Span) && document.RootElement.ValueKind != JsonValueKind.Array)
                {
                    document.Dispose();
                    await WriteAsync(response, StatusCodes.Status200OK, Error(null, -32700, "Parse error: the request is not valid UTF-8."));
                    return;
                }
            }

            if (isLone && server.IsStopping)
            {
                // Stopping: it opens no session for a call it would not run.
                if (lone.Notification) response.StatusCode = StatusCodes.Status204NoContent;
                else await WriteAsync(response, StatusCodes.Status200OK, Error(lone.Id, ErrorCodes.ToJsonRpc(ErrorCodes.Unavailable), StoppingMessage));
                return;
            }

            using JsonDocument? parsed = document;
            (Calls calls, bool owned) = CallsFor(context);
            await using Calls? own = owned ? calls : null; // a session of this request's own ends with it
            // A JSON-RPC caller's W3C trace context comes as the standard header (or as the current request's span).
            (bool? pointer, long? ttlMs, string? headerProblem) = PointerHeaders(context.Request);
            if (headerProblem is not null)
            {
                await WriteAsync(response, StatusCodes.Status200OK, Error(null, -32600, "Invalid Request: " + headerProblem));
                return;
            }

            var request = new Request(calls, context.RequestAborted,
                context.Request.Headers["traceparent"].ToString() is { Length: > 0 and <= 256 } traceparent ? traceparent : System.Diagnostics.Activity.Current?.Id,
                pointer, ttlMs);
            bool includeOutput = context.Request.Headers["IpyRpc-Output"].ToString().Equals("include", StringComparison.OrdinalIgnoreCase);
            if (parsed?.RootElement is { ValueKind: JsonValueKind.Array } batch)
            {
                if (batch.GetArrayLength() == 0)
                {
                    await WriteAsync(response, StatusCodes.Status200OK, Error(null, -32600, "Invalid Request: an empty batch."));
                    return;
                }

                await HandleBatchAsync(response, batch, request, includeOutput);
                return;
            }

            bool stream = context.Request.Headers.Accept.ToString().Contains(NdJson, StringComparison.OrdinalIgnoreCase);
            Live? live = null;
            if (stream)
            {
                response.ContentType = NdJson;
                response.Headers.CacheControl = "no-cache";
                live = new Live(context);
            }

            byte[]? reply = isLone
                ? await CallOneAsync(lone.Id, lone.Notification, lone.Method, lone.Parameters, request, includeOutput, live, lend: true)
                : await HandleOneAsync(parsed!.RootElement, request, includeOutput, live, lend: true);
            if (reply is null)
            {
                if (!response.HasStarted) response.StatusCode = StatusCodes.Status204NoContent;
                return;
            }

            if (stream)
            {
                await response.Body.WriteAsync(reply, context.RequestAborted);
                await response.Body.WriteAsync("\n"u8.ToArray(), context.RequestAborted);
                return;
            }

            await WriteAsync(response, StatusCodes.Status200OK, reply);
        }
        catch (ObjectDisposedException) when (server.IsStopping)
        {
            // The server stopped taking calls while this one came: nothing of it ran.
            if (!response.HasStarted)
            {
                await WriteAsync(response, StatusCodes.Status200OK, Error(null, ErrorCodes.ToJsonRpc(ErrorCodes.Unavailable), StoppingMessage));
            }
        }
        catch (Exception e) when (e is not OperationCanceledException || !context.RequestAborted.IsCancellationRequested)
        {
            // Never an empty 500: log it, and answer in JSON-RPC while the response can still carry it.
            server.Log.LogError(e, "The JSON-RPC endpoint failed on a request from {Remote}", context.Connection.RemoteIpAddress);
            if (!response.HasStarted)
            {
                await WriteAsync(response, StatusCodes.Status200OK, Error(null, ErrorCodes.ToJsonRpc(ErrorCodes.Internal), $"Internal error: the server failed handling this request ({e.GetType().Name}: {e.Message})."));
            }
        }
    }

    // The batch and live-output paths are methods of their own: lambdas in HandleAsync would make their closure for
    // every request, batch or not.
    private async Task HandleBatchAsync(HttpResponse response, JsonElement root, Request request, bool includeOutput)
    {
        // The batch's calls run side by side, but no more at once than the connection may have in flight: the rest
        // wait for room rather than being refused (too_many_requests is for a client's own excess, not the server's).
        JsonElement[] entries = [.. root.EnumerateArray()];
        var replies = new byte[]?[entries.Length];
        int next = -1;
        async Task LaneAsync()
        {
            for (int i; (i = Interlocked.Increment(ref next)) < entries.Length;)
            {
                replies[i] = await HandleOneAsync(entries[i], request, includeOutput, null, lend: false);
            }
        }

        await Task.WhenAll(Enumerable.Range(0, Math.Min(entries.Length, server.MaxCallsInFlightPerConnection)).Select(_ => LaneAsync()));
        byte[][] sent = [.. replies.Where(r => r is not null)!];
        if (sent.Length == 0)
        {
            response.StatusCode = StatusCodes.Status204NoContent;
            return;
        }

        var batch = new ArrayBufferWriter<byte>();
        batch.Write("["u8);
        for (int i = 0; i < sent.Length; i++)
        {
            if (i > 0) batch.Write(","u8);
            batch.Write(sent[i]);
        }

        batch.Write("]"u8);
        await WriteAsync(response, StatusCodes.Status200OK, batch.WrittenMemory);
    }

    /// <summary>
    /// Where an <c>application/x-ndjson</c> request's notifications go, a line each, as they come: each piece of output
    /// (<c>ipyrpc.output</c>), each batch of a stream's items (<c>ipyrpc.items</c>) and each progress report (<c>ipyrpc.progress</c>).
    /// </summary>
    private sealed class Live(HttpContext context)
    {
        private readonly SemaphoreSlim _gate = new(1, 1);

        public Task OutputAsync(OutputStream stream, string text) => WriteLineAsync(OutputNotification(stream, text));

        /// <summary>A batch of items: <paramref name="items"/> is its JSON array.</summary>
        public Task ItemsAsync(ReadOnlyMemory<byte> items) => WriteLineAsync(Notification("ipyrpc.items", "items", items.Span));

        /// <summary>A progress report: <paramref name="value"/> is its JSON.</summary>
        public Task ProgressAsync(ReadOnlyMemory<byte> value) => WriteLineAsync(Notification("ipyrpc.progress", "value", value.Span));

        // A reader gone meanwhile (the request aborted) is no failure of the call: the line is dropped.
        private async Task WriteLineAsync(byte[] line)
        {
            await _gate.WaitAsync();
            try
            {
                await context.Response.Body.WriteAsync(line, context.RequestAborted);
                await context.Response.Body.WriteAsync("\n"u8.ToArray(), context.RequestAborted);
                await context.Response.Body.FlushAsync(context.RequestAborted);
            }
            catch (Exception e) when (e is OperationCanceledException or IOException)
            {
            }
            finally
            {
                _gate.Release();
            }
        }

        private static byte[] Notification(string method, string member, ReadOnlySpan<byte> json)
        {
            var buffer = new ArrayBufferWriter<byte>(json.Length + 64);
            using (var w = new Utf8JsonWriter(buffer, global::IpyRpc.Formatting.Json.JsonWire.Options))
            {
                w.WriteStartObject();
                w.WriteString("jsonrpc", "2.0");
                w.WriteString("method", method);
                w.WriteStartObject("params");
                w.WritePropertyName(member);
                w.WriteRawValue(json, skipInputValidation: true);
                w.WriteEndObject();
                w.WriteEndObject();
            }

            return buffer.WrittenSpan.ToArray();
        }
    }

    /// <summary>What a request's calls share: its session, its abort, its trace, and its pointer headers (<c>IpyRpc-Pointer</c>, <c>IpyRpc-Pointer-Ttl-Ms</c>).</summary>
    private readonly record struct Request(Calls Calls, CancellationToken Aborted, string? Trace, bool? Pointer = null, long? PointerTtlMs = null);

    /// <summary>The pointer headers: whether the request's calls answer with pointers, and for how long their values are kept; a problem's text when they are malformed.</summary>
    private static (bool? Pointer, long? TtlMs, string? Problem) PointerHeaders(HttpRequest request)
    {
        string pointer = request.Headers["IpyRpc-Pointer"].ToString(), ttl = request.Headers["IpyRpc-Pointer-Ttl-Ms"].ToString();
        bool? asked = pointer.Length == 0 ? null : bool.TryParse(pointer, out bool b) ? b : null;
        if (pointer.Length > 0 && asked is null) return (null, null, $"the header IpyRpc-Pointer is true or false, not \"{pointer}\".");
        long? ms = null;
        if (ttl.Length > 0)
        {
            if (!long.TryParse(ttl, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out long parsed) || parsed <= 0)
            {
                return (null, null, $"the header IpyRpc-Pointer-Ttl-Ms is a positive number of milliseconds, not \"{ttl}\".");
            }

            ms = parsed;
        }

        return (asked, ms, null);
    }

    private static readonly object SharedCallsKey = new();

    /// <summary>
    /// The session a request's calls run in. Requests on one HTTP connection (a kept-alive HTTP/1.1 connection, or
    /// an HTTP/2 connection's streams) share one while they come from the same principal: it is made with the
    /// connection's first request and ends when the connection closes, so a request costs no session of its own.
    /// A request from another principal than the shared session's, or on a server that does not say when its
    /// connections close, gets a session of its own for its duration (then <c>Owned</c> is true: the caller
    /// disposes it).
    /// </summary>
    private (Calls Calls, bool Owned) CallsFor(HttpContext context)
    {
        ClaimsPrincipal? user = RequestUser.Authenticated(context);
        IDictionary<object, object?>? items = context.Features.Get<IConnectionItemsFeature>()?.Items;
        if (items is null)
        {
            return (NewCalls(context, user), true);
        }

        lock (items)
        {
            if (items.TryGetValue(SharedCallsKey, out object? found) && found is Calls shared)
            {
                // A shared session is closed as its connection closes (below): no need to ask the connection again.
                return !shared.Closed && SamePrincipal(shared.Principal, user) ? (shared, false) : (NewCalls(context, user), true);
            }

            CancellationToken closed = context.Features.Get<IConnectionLifetimeFeature>()?.ConnectionClosed ?? default;
            if (!closed.CanBeCanceled || closed.IsCancellationRequested)
            {
                return (NewCalls(context, user), true);
            }

            Calls created = NewCalls(context, user);
            items[SharedCallsKey] = created;
            closed.Register(static s => _ = ((Calls)s!).DisposeAsync().AsTask(), created);
            return (created, false);
        }
    }

    private Calls NewCalls(HttpContext context, ClaimsPrincipal? user) => new(server, new IpyRpcConnection("http", Address(context), user), user);

    /// <summary>Whether two requests' principals are the same caller: both anonymous, or the same identities with the same claims.</summary>
    internal static bool SamePrincipal(ClaimsPrincipal? a, ClaimsPrincipal? b)
    {
        if (a is null || b is null) return a is null && b is null;
        if (ReferenceEquals(a, b)) return true;
        using IEnumerator<ClaimsIdentity> left = a.Identities.GetEnumerator(), right = b.Identities.GetEnumerator();
        while (true)
        {
            bool more = left.MoveNext();
            if (more != right.MoveNext()) return false;
            if (!more) return true;
            ClaimsIdentity x = left.Current, y = right.Current;
            if (x.IsAuthenticated != y.IsAuthenticated || x.AuthenticationType != y.AuthenticationType || x.Name != y.Name) return false;
            if (!x.Claims.Select(c => (c.Type, c.Value, c.ValueType, c.Issuer)).SequenceEqual(y.Claims.Select(c => (c.Type, c.Value, c.ValueType, c.Issuer)))) return false;
        }
    }

    internal static string? Address(HttpContext context) => context.Connection.RemoteIpAddress is { } ip
        ? (ip.AddressFamily == System.Net.Sockets.AddressFamily.InterNetworkV6 ? $"[{ip}]" : ip.ToString()) + ":" + context.Connection.RemotePort
        : null;

    private static bool IsJson(string? contentType)
    {
        if (contentType is null) return false;
        ReadOnlySpan<char> media = contentType.AsSpan();
        int parameters = media.IndexOf(';');
        media = (parameters < 0 ? media : media[..parameters]).Trim();
        return media.Equals("application/json", StringComparison.OrdinalIgnoreCase)
            || media.Equals("application/json-rpc", StringComparison.OrdinalIgnoreCase)
            || media.Equals("application/jsonrequest", StringComparison.OrdinalIgnoreCase)
            || media.EndsWith("+json", StringComparison.OrdinalIgnoreCase);
    }

    /// <summary>Handles one request object; returns the response JSON, or null for a notification.</summary>
    private async Task<byte[]?> HandleOneAsync(JsonElement request, Request http, bool includeOutput, Live? live, bool lend)
    {
        try
        {
            if (request.ValueKind != JsonValueKind.Object)
            {
                return Error(null, -32600, $"Invalid Request: a request must be an object, not {Describe(request.ValueKind)}.");
            }

            string? id = null; // raw JSON of the id, echoed exactly
            bool notification = !request.TryGetProperty("id", out JsonElement idElement);
            if (!notification)
            {
                if (idElement.ValueKind is not (JsonValueKind.String or JsonValueKind.Number or JsonValueKind.Null))
                {
                    return Error(null, -32600, $"Invalid Request: \"id\" must be a string, a number or null, not {Describe(idElement.ValueKind)}.");
                }

                id = idElement.GetRawText();
            }

            if (!request.TryGetProperty("jsonrpc", out JsonElement version) || version.ValueKind != JsonValueKind.String || version.GetString() != "2.0")
            {
                return Error(id, -32600, "Invalid Request: \"jsonrpc\" must be exactly \"2.0\".");
            }

            if (!request.TryGetProperty("method", out JsonElement methodElement) || methodElement.ValueKind != JsonValueKind.String)
            {
                return Error(id, -32600, "Invalid Request: \"method\" must be a string.");
            }

            string method = methodElement.GetString()!;
            ReadOnlyMemory<byte> parameters = ReadOnlyMemory<byte>.Empty;
            if (request.TryGetProperty("params", out JsonElement paramsElement))
            {
                if (paramsElement.ValueKind is not (JsonValueKind.Array or JsonValueKind.Object))
                {
                    return Error(id, -32600, $"Invalid Request: \"params\" must be an array or an object, not {Describe(paramsElement.ValueKind)}.");
                }

                // The params' own bytes, as they came: no string and re-encoding between the body and the decoder.
                ReadOnlySpan<byte> raw = System.Runtime.InteropServices.JsonMarshal.GetRawUtf8Value(paramsElement);
                if (!System.Text.Unicode.Utf8.IsValid(raw))
                {
                    return Error(id, -32600, "Invalid Request: it contains text that is not valid UTF-8.");
                }

                parameters = raw.ToArray();
            }

            return await CallOneAsync(id, notification, method, parameters, http, includeOutput, live, lend);
        }
        catch (InvalidOperationException e) when (e.InnerException is System.Text.DecoderFallbackException || e.Message.Contains("UTF-8", StringComparison.OrdinalIgnoreCase) || e.Message.Contains("transcod", StringComparison.OrdinalIgnoreCase))
        {
            // Reading a string of this request met bytes that are not UTF-8.
            return Error(null, -32600, "Invalid Request: it contains text that is not valid UTF-8.");
        }
    }

    /// <summary>Makes one valid request's call; returns the response JSON, or null for a notification.</summary>
    private async ValueTask<byte[]?> CallOneAsync(string? id, bool notification, string method, ReadOnlyMemory<byte> parameters, Request http, bool includeOutput, Live? live, bool lend)
    {
        if (method == "rpc.discover")
        {
            (IReadOnlyList<FunctionDescriptor>? functions, RemoteError? refusal) = await http.Calls.DescribeAsync();
            if (notification) return null;
            return refusal is null ? Result(id, OpenRpcDocument.Write(functions!, options.Title, options.Version, events: server.Events), null) : Error(id, ErrorCodes.ToJsonRpc(refusal.Code), refusal.Message, refusal, null);
        }

        if (method is "rpc.fetch" or "rpc.release")
        {
            return await PointerAsync(id, notification, method, parameters, http);
        }

        if (method is "rpc.submit" or "rpc.attach" or "rpc.status" or "rpc.jobs" or "rpc.cancel")
        {
            return await JobAsync(id, notification, method, parameters, http, includeOutput, live);
        }

        CallOutcome outcome = await http.Calls.CallAsync(method, parameters, live, http, lend);
        if (notification)
        {
            return null;
        }

        if (outcome.Message.Kind == MessageKind.Result)
        {
            // A streaming function's items, collected in order, are the JSON-RPC result; streamed as they came (NDJSON), their count is.
            ReadOnlyMemory<byte> value = live is null && server.Find(method)?.Descriptor.IsStream == true ? Collect(outcome.Items) : ToJson(outcome.Message);
            return Result(id, value.Span, includeOutput ? outcome.Output ?? [] : null);
        }

        RemoteError error = RemoteError.Decode(outcome.Message.Body.Span, outcome.Message.Serialization);
        return Error(id, ErrorCodes.ToJsonRpc(error.Code), error.Message, error, outcome.Output);
    }

    /// <summary>
    /// The job methods, each the binary protocol's message of the same purpose, run through the same session (so the same
    /// authorization): <c>rpc.submit</c> (<c>{"method", "params"?, "timeout_ms"?}</c> or <c>[method, params?]</c>: the
    /// job's info, at once), <c>rpc.attach</c> (<c>[job]</c>: waits for the job and answers with its result or error, its
    /// output as a call's), <c>rpc.status</c> (<c>[job, output?]</c> or <c>{"job", "output"?}</c>: its info, with its
    /// recorded output when asked), <c>rpc.jobs</c> (<c>{"state"?, "function"?, "limit"?}</c>: infos, newest first) and
    /// <c>rpc.cancel</c> (<c>[job]</c>: whether it was cancelled).
    /// </summary>
    private async ValueTask<byte[]?> JobAsync(string? id, bool notification, string method, ReadOnlyMemory<byte> parameters, Request http, bool includeOutput, Live? live)
    {
        IpyRpcMessage message;
        try
        {
            message = JobMessage(method, parameters.IsEmpty ? "[]"u8.ToArray() : parameters);
        }
        catch (Exception e) when (e is JsonException or FormatException)
        {
            string problem = e is JsonException ? "its params are not " + (method == "rpc.jobs" ? "a filter object" : "valid") + ": " + e.Message : e.Message;
            return notification ? null : Error(id, -32602, $"Invalid params: {method}: {problem}", new RemoteError { Code = ErrorCodes.InvalidArguments, Message = $"{method}: {problem}" });
        }

        // A streaming function's job is answered, as its call is, with its items collected in order.
        bool stream = method == "rpc.attach" && await StreamsAsync(message.JobId!, http);
        if (message.Kind == MessageKind.Submit) message = message with { ReturnPointer = http.Pointer, PointerTtlMs = http.PointerTtlMs };
        CallOutcome outcome = await http.Calls.SendAsync(message, method == "rpc.attach" ? live : null, http.Trace, http.Aborted);
        if (notification) return null;
        if (outcome.Message.Kind == MessageKind.Result && stream)
        {
            // Collected into the answer, or (NDJSON) already sent as they came, the answer then their count.
            ReadOnlyMemory<byte> result = ToJson(outcome.Message);
            long read = outcome.ItemsSent;
            byte[] items = live is null ? Collect(outcome.Items, out read) : result.ToArray();
            // The result is how many items the job made: fewer in its record is said, not answered as the whole.
            var count = new Utf8JsonReader(result.Span);
            if (count.Read() && count.TokenType == JsonTokenType.Number && count.TryGetInt64(out long made) && read < made)
            {
                var gone = new RemoteError
                {
                    Code = ErrorCodes.NotFound,
                    Message = $"Job {message.JobId} made {made} items, of which the first {made - read} are no longer recorded: a job's record keeps at most "
                        + "JobRetention.MaxOutputBytesPerJob (8 MiB unless the server sets it) of output and items together, the oldest going first.",
                };
                return Error(id, ErrorCodes.ToJsonRpc(gone.Code), gone.Message, gone, outcome.Output);
            }

            return Result(id, items, includeOutput ? outcome.Output ?? [] : null);
        }

        if (outcome.Message.Kind == MessageKind.Result)
        {
            return Result(id, ToJson(outcome.Message).Span, includeOutput && method == "rpc.attach" ? outcome.Output ?? [] : null);
        }

        RemoteError error = RemoteError.Decode(outcome.Message.Body.Span, outcome.Message.Serialization);
        return Error(id, ErrorCodes.ToJsonRpc(error.Code), error.Message, error, outcome.Output);
    }

    /// <summary>Whether the job runs a streaming function (false when it cannot be told: the attach then says why).</summary>
    private async ValueTask<bool> StreamsAsync(string jobId, Request http)
    {
        CallOutcome status = await http.Calls.SendAsync(
            new IpyRpcMessage { Kind = MessageKind.Status, JobId = jobId, Serialization = Serialization.Json }, null, http.Trace, http.Aborted);
        if (status.Message.Kind != MessageKind.Result) return false;
        using JsonDocument info = JsonDocument.Parse(ToJson(status.Message));
        return info.RootElement.TryGetProperty("function", out JsonElement function) && function.GetString() is { } name
            && server.Find(name)?.Descriptor.IsStream == true;
    }

    /// <summary>The message a job method sends (its id is set when it is sent).</summary>
    /// <exception cref="FormatException">The params are not the method's.</exception>
    private static IpyRpcMessage JobMessage(string method, ReadOnlyMemory<byte> parameters)
    {
        using JsonDocument document = JsonDocument.Parse(parameters);
        JsonElement root = document.RootElement;
        if (method == "rpc.jobs")
        {
            if (root.ValueKind == JsonValueKind.Array && root.GetArrayLength() == 0) return new IpyRpcMessage { Kind = MessageKind.List, Serialization = Serialization.Json };
            if (root.ValueKind != JsonValueKind.Object) throw new FormatException("params are a filter object: {\"state\"?, \"function\"?, \"limit\"?}.");
            return new IpyRpcMessage { Kind = MessageKind.List, Serialization = Serialization.Json, Parts = [parameters.ToArray()] };
        }

        // Params by position or by name, each method's names in its positional order.
        string[] names = method switch
        {
            "rpc.submit" => ["method", "params", "timeout_ms"],
            "rpc.status" => ["job", "output"],
            _ => ["job"],
        };
        var given = new Dictionary<string, JsonElement>(StringComparer.Ordinal);
        if (root.ValueKind == JsonValueKind.Array)
        {
            if (root.GetArrayLength() > names.Length) throw new FormatException($"it takes at most {names.Length} params ({string.Join(", ", names)}), not {root.GetArrayLength()}.");
            int i = 0;
            foreach (JsonElement item in root.EnumerateArray()) given[names[i++]] = item.Clone();
        }
        else if (root.ValueKind == JsonValueKind.Object)
        {
            foreach (JsonProperty property in root.EnumerateObject())
            {
                if (Array.IndexOf(names, property.Name) < 0) throw new FormatException($"it has no param named '{property.Name}' (it takes {string.Join(", ", names)}).");
                given[property.Name] = property.Value.Clone();
            }
        }

        string Text(string name) => given.TryGetValue(name, out JsonElement e) && e.ValueKind == JsonValueKind.String && e.GetString() is { Length: > 0 } text ? text
            : throw new FormatException($"it needs \"{name}\", {(name == "job" ? "a job's id (what rpc.submit answered with)" : "a function's name")}.");
        switch (method)
        {
            case "rpc.submit":
                {
                    string function = Text("method");
                    byte[] arguments = "[]"u8.ToArray();
                    if (given.TryGetValue("params", out JsonElement args))
                    {
                        if (args.ValueKind is not (JsonValueKind.Array or JsonValueKind.Object)) throw new FormatException("\"params\" are the function's params: an array or an object.");
                        arguments = System.Runtime.InteropServices.JsonMarshal.GetRawUtf8Value(args).ToArray();
                    }

                    long? timeout = null;
                    if (given.TryGetValue("timeout_ms", out JsonElement t))
                    {
                        timeout = t.ValueKind == JsonValueKind.Number && t.TryGetInt64(out long ms) && ms >= 0 ? ms : throw new FormatException("\"timeout_ms\" is a whole number of milliseconds, not negative.");
                    }

                    return new IpyRpcMessage { Kind = MessageKind.Submit, Function = function, TimeoutMs = timeout, Serialization = Serialization.Json, Parts = [arguments] };
                }

            case "rpc.status":
                {
                    bool output = given.TryGetValue("output", out JsonElement o) && (o.ValueKind is JsonValueKind.True or JsonValueKind.False
                        ? o.ValueKind == JsonValueKind.True : throw new FormatException("\"output\" is true or false."));
                    return new IpyRpcMessage { Kind = MessageKind.Status, JobId = Text("job"), After = output ? 0 : null, Serialization = Serialization.Json };
                }

            case "rpc.attach":
                return new IpyRpcMessage { Kind = MessageKind.Attach, JobId = Text("job"), After = 0, Serialization = Serialization.Json };
            default:
                return new IpyRpcMessage { Kind = MessageKind.Cancel, JobId = Text("job"), Serialization = Serialization.Json };
        }
    }

    /// <summary>
    /// <c>rpc.fetch</c> (the value a pointer points to, or rows of it, as JSON) and <c>rpc.release</c>: the pointer's
    /// holder is reached by the server, so a JSON-RPC caller needs no other connection. The key is the only credential.
    /// Params: <c>[pointer, start?, stop?]</c> or <c>{"pointer", "start"?, "stop"?}</c>.
    /// </summary>
    private async ValueTask<byte[]?> PointerAsync(string? id, bool notification, string method, ReadOnlyMemory<byte> parameters, Request http)
    {
        // The server connects to the holder the pointer names for its caller: only a caller it would let call functions may
        // ask, as with a pointer passed as an argument (a holder's own fetch, which connects nowhere, needs only the key).
        if (http.Calls.AccessDenied() is { } refusal)
        {
            return notification ? null : Error(id, ErrorCodes.ToJsonRpc(refusal.Code), refusal.Message, refusal, null);
        }

        CancellationToken aborted = http.Aborted;
        RemotePointer? pointer = null;
        long? start = null, stop = null;
        string? problem = null;
        try
        {
            using JsonDocument document = JsonDocument.Parse(parameters.IsEmpty ? "[]"u8.ToArray() : parameters);
            JsonElement root = document.RootElement;
            JsonElement? given = null, from = null, to = null;
            if (root.ValueKind == JsonValueKind.Array)
            {
                int n = root.GetArrayLength();
                if (n > (method == "rpc.fetch" ? 3 : 1)) problem = $"{method} takes {(method == "rpc.fetch" ? "a pointer, then optionally start and stop" : "a pointer")}, not {n} values.";
                if (n > 0) given = root[0];
                if (n > 1) from = root[1];
                if (n > 2) to = root[2];
            }
            else
            {
                foreach (JsonProperty p in root.EnumerateObject())
                {
                    switch (p.Name)
                    {
                        case "pointer": given = p.Value; break;
                        case "start" when method == "rpc.fetch": from = p.Value; break;
                        case "stop" when method == "rpc.fetch": to = p.Value; break;
                        default: problem ??= $"{method} has no parameter named '{p.Name}'."; break;
                    }
                }
            }

            if (given is not { } g || !RemotePointer.TryRead(System.Runtime.InteropServices.JsonMarshal.GetRawUtf8Value(g), Serialization.Json, out pointer))
            {
                problem ??= $"{method} needs a pointer: the object a function returned, with \"type\": \"ipyrpc_data_pointer\", its \"path\", \"secret_key\", \"holder\" and address.";
            }

            start = Row(from, "start", ref problem);
            stop = Row(to, "stop", ref problem);
        }
        catch (JsonException e)
        {
            problem = e.Message;
        }

        if (problem is not null)
        {
            return notification ? null : Error(id, -32602, "Invalid params: " + problem, new RemoteError { Code = ErrorCodes.InvalidArguments, Message = problem, Parameter = "pointer" });
        }

        try
        {
            if (method == "rpc.release")
            {
                await server.ReleasePointerAsync(pointer!, aborted);
                return notification ? null : Result(id, "true"u8, null);
            }

            ReadOnlyMemory<byte> value = await server.FetchPointerAsync(pointer!, start, stop, Serialization.Json, aborted);
            return notification ? null : Result(id, value.Span, null);
        }
        catch (IpyRpcException e) when (e is not RemoteException)
        {
            return notification ? null : Error(id, ErrorCodes.ToJsonRpc(e.Code), e.Error.Message, e.Error, null);
        }
    }

    private static long? Row(JsonElement? given, string name, ref string? problem)
    {
        if (given is not { } value || value.ValueKind == JsonValueKind.Null) return null;
        if (value.ValueKind == JsonValueKind.Number && value.TryGetInt64(out long row)) return row;
        problem ??= $"{name} is a row index (a whole number, negative from the end), not {value.GetRawText()}.";
        return null;
    }

    /// <summary>The items of a stream's batches as one JSON array.</summary>
    private static byte[] Collect(List<IpyRpcMessage>? batches) => Collect(batches, out _);

    private static byte[] Collect(List<IpyRpcMessage>? batches, out long count)
    {
        batches ??= [];
        count = 0;
        var buffer = new ArrayBufferWriter<byte>();
        using (var writer = new Utf8JsonWriter(buffer, global::IpyRpc.Formatting.Json.JsonWire.Options))
        {
            writer.WriteStartArray();
            foreach (IpyRpcMessage batch in batches)
            {
                using JsonDocument items = JsonDocument.Parse(ToJson(batch));
                foreach (JsonElement item in items.RootElement.EnumerateArray())
                {
                    item.WriteTo(writer);
                    count++;
                }
            }

            writer.WriteEndArray();
        }

        return buffer.WrittenSpan.ToArray();
    }

    /// <summary>A result or batch of items as JSON: its own body when it is JSON already (no copy), else converted.</summary>
    private static ReadOnlyMemory<byte> ToJson(IpyRpcMessage result)
    {
        if (result.Serialization == Serialization.Json)
        {
            return result.Body;
        }

        // A function configured for MessagePack output still answers JSON callers in JSON.
        var reader = new MessagePackReader(result.Body.Span);
        object? value = Formatters.Object.Read(ref reader);
        var buffer = new ArrayBufferWriter<byte>();
        using (var writer = new Utf8JsonWriter(buffer, global::IpyRpc.Formatting.Json.JsonWire.Options)) Formatters.Object.Write(writer, value);
        return buffer.WrittenSpan.ToArray();
    }

    // Each thread's response buffer and writer, reused: a response costs only its own bytes.
    [ThreadStatic] private static ArrayBufferWriter<byte>? t_response;
    [ThreadStatic] private static Utf8JsonWriter? t_writer;

    private static byte[] Result(string? id, ReadOnlySpan<byte> result, List<(OutputStream Stream, string Text)>? output)
    {
        ArrayBufferWriter<byte> buffer = t_response ??= new ArrayBufferWriter<byte>(256);
        buffer.ResetWrittenCount();
        Utf8JsonWriter w = t_writer ??= new Utf8JsonWriter(buffer, global::IpyRpc.Formatting.Json.JsonWire.Options);
        w.Reset(buffer);
        try
        {
            w.WriteStartObject();
            w.WriteString("jsonrpc", "2.0");
            w.WritePropertyName("result");
            w.WriteRawValue(result, skipInputValidation: true);
            if (output is not null)
            {
                w.WritePropertyName("output");
                WriteOutput(w, output);
            }

            WriteId(w, id);
            w.WriteEndObject();
            w.Flush();
            return buffer.WrittenSpan.ToArray();
        }
        finally
        {
            if (buffer.Capacity > 64 * 1024)
            {
                // A large result's buffer is not kept for the thread's next response.
                t_response = null;
                t_writer = null;
            }
        }
    }

    private static byte[] Error(string? id, int code, string message, RemoteError? error = null, List<(OutputStream Stream, string Text)>? output = null)
    {
        var buffer = new ArrayBufferWriter<byte>(256);
        using (var w = new Utf8JsonWriter(buffer, global::IpyRpc.Formatting.Json.JsonWire.Options))
        {
            w.WriteStartObject();
            w.WriteString("jsonrpc", "2.0");
            w.WritePropertyName("error");
            w.WriteStartObject();
            w.WriteNumber("code", code);
            w.WriteString("message", message);
            if (error is not null)
            {
                w.WritePropertyName("data");
                w.WriteStartObject();
                w.WriteString("code", error.Code);
                if (error.Type is not null) w.WriteString("type", error.Type);
                if (error.Parameter is not null) w.WriteString("parameter", error.Parameter);
                if (error.Job is not null) w.WriteString("job", error.Job);
                if (error.StackTrace is not null) w.WriteString("stack", error.StackTrace);
                if (error.Inner is not null)
                {
                    w.WritePropertyName("inner");
                    error.Inner.WriteJson(w);
                }

                if (error.Data is { Count: > 0 } properties)
                {
                    w.WritePropertyName("properties");
                    Formatters.Object.Write(w, properties);
                }

                if (output is { Count: > 0 })
                {
                    w.WritePropertyName("output");
                    WriteOutput(w, output);
                }

                w.WriteEndObject();
            }

            w.WriteEndObject();
            WriteId(w, id);
            w.WriteEndObject();
        }

        return buffer.WrittenSpan.ToArray();
    }

    private static void WriteOutput(Utf8JsonWriter w, List<(OutputStream Stream, string Text)> output)
    {
        w.WriteStartArray();
        foreach ((OutputStream stream, string text) in output)
        {
            w.WriteStartObject();
            w.WriteString("stream", stream == OutputStream.Stderr ? "stderr" : "stdout");
            w.WriteString("text", text);
            w.WriteEndObject();
        }

        w.WriteEndArray();
    }

    private static void WriteId(Utf8JsonWriter w, string? id)
    {
        w.WritePropertyName("id");
        if (id is null) w.WriteNullValue();
        else w.WriteRawValue(id, skipInputValidation: true);
    }

    private static byte[] OutputNotification(OutputStream stream, string text)
    {
        var buffer = new ArrayBufferWriter<byte>(text.Length + 96);
        using (var w = new Utf8JsonWriter(buffer, global::IpyRpc.Formatting.Json.JsonWire.Options))
        {
            w.WriteStartObject();
            w.WriteString("jsonrpc", "2.0");
            w.WriteString("method", "ipyrpc.output");
            w.WriteStartObject("params");
            w.WriteString("stream", stream == OutputStream.Stderr ? "stderr" : "stdout");
            w.WriteString("text", text);
            w.WriteEndObject();
            w.WriteEndObject();
        }

        return buffer.WrittenSpan.ToArray();
    }

    private static string Describe(JsonValueKind kind) => kind switch
    {
        JsonValueKind.Object => "an object",
        JsonValueKind.Array => "an array",
        JsonValueKind.String => "a string",
        JsonValueKind.Number => "a number",
        JsonValueKind.True or JsonValueKind.False => "a boolean",
        JsonValueKind.Null => "null",
        _ => kind.ToString(),
    };

    private static async Task WriteAsync(HttpResponse response, int status, ReadOnlyMemory<byte> json)
    {
        response.StatusCode = status;
        response.ContentType = "application/json";
        response.ContentLength = json.Length;
        await response.Body.WriteAsync(json);
    }

    /// <summary>A call's final message, with its output and a stream's items when there were any (null when none).</summary>
    private readonly record struct CallOutcome(IpyRpcMessage Message, List<(OutputStream Stream, string Text)>? Output, List<IpyRpcMessage>? Items, long ItemsSent);

    /// <summary>The calls of one HTTP request, run through one server session.</summary>
    private sealed class Calls : IAsyncDisposable
    {
        private readonly Dictionary<ulong, Pending> _pending = [];
        private readonly ServerSession _session;
        private long _nextId;
        private int _disposed;

        private readonly long _maxCollectedBytes;

        public Calls(IpyRpcServer server, IpyRpcConnection connection, ClaimsPrincipal? principal)
        {
            _session = server.CreateSession(ReceiveAsync, connection, duplex: false);
            _session.PeerHearsClose = false; // JSON-RPC has no close: a call the stopping server cannot run is answered at once
            _maxCollectedBytes = server.Options.MaxMessageBytes;
            Principal = principal;
        }

        public ValueTask<(IReadOnlyList<FunctionDescriptor>? Functions, RemoteError? Refusal)> DescribeAsync() => _session.DescribeAsync();

        /// <summary>Why the session's caller may not call anything; <see langword="null"/> when it may.</summary>
        public RemoteError? AccessDenied() => _session.AccessDenied();

        /// <summary>Who the session's connection is: a later request on the same HTTP connection shares it only as the same principal.</summary>
        public ClaimsPrincipal? Principal { get; }

        public bool Closed => Volatile.Read(ref _disposed) == 1;

        /// <summary>Makes one call of <paramref name="http"/>; if its request is aborted first, the call is abandoned as a disconnect would abandon it.</summary>
        public ValueTask<CallOutcome> CallAsync(string method, ReadOnlyMemory<byte> parameters, Live? live, Request http, bool lend)
            => SendAsync(
                (method, parameters, http),
                static (id, c) => new IpyRpcMessage
                {
                    Kind = MessageKind.Call, Id = id, Function = c.method, Trace = c.http.Trace, Serialization = Serialization.Json, Parts = [c.parameters],
                    ReturnPointer = c.http.Pointer, PointerTtlMs = c.http.PointerTtlMs,
                },
                live, http.Aborted, lend);

        /// <summary>Sends a job message (its id set here) and waits for its final answer, as <see cref="CallAsync"/> does.</summary>
        public ValueTask<CallOutcome> SendAsync(IpyRpcMessage request, Live? live, string? trace, CancellationToken aborted)
            => SendAsync((request, trace), static (id, r) => r.request with { Id = id, Trace = r.trace }, live, aborted, lend: false);

        /// <summary>
        /// Sends the request <paramref name="make"/> makes under a new id and waits for its final answer; if
        /// <paramref name="aborted"/> fires first, the request is abandoned as a disconnect would abandon it.
        /// </summary>
        private async ValueTask<CallOutcome> SendAsync<TState>(TState state, Func<ulong, TState, IpyRpcMessage> make, Live? live, CancellationToken aborted, bool lend)
        {
            ulong id = (ulong)Interlocked.Increment(ref _nextId);
            var pending = new Pending(live) { Id = id, Owner = this };
            lock (_pending) _pending[id] = pending;
            try
            {
                using CancellationTokenRegistration onAbort = aborted.Register(static s => ((Pending)s!).Abandon(), pending);
                IpyRpcMessage call = make(id, state);
                // A request of one call lends its thread to that call's job; a batch's calls run side by side on workers.
                await (lend ? RequestLending.HandleAsync(_session, call) : _session.HandleAsync(call));
                IpyRpcMessage final = await pending.Done;
                List<(OutputStream, string)>? output;
                List<IpyRpcMessage>? items;
                lock (pending) (output, items) = (pending.Output, pending.Items);
                return new CallOutcome(final, output, items, Interlocked.Read(ref pending.ItemsSent));
            }
            finally
            {
                lock (_pending) _pending.Remove(id);
            }
        }

        private async ValueTask ReceiveAsync(IpyRpcMessage message, CancellationToken cancellationToken)
        {
            Pending? pending;
            lock (_pending)
            {
                if (!_pending.TryGetValue(message.Id, out pending)) return;
            }

            if (message.Kind == MessageKind.Output)
            {
                string text = Encoding.UTF8.GetString(message.Body.Span);
                lock (pending) (pending.Output ??= []).Add((message.Stream, text));
                if (pending.Live is { } live) await live.OutputAsync(message.Stream, text);

                return;
            }

            if (message.Kind == MessageKind.Items && pending.Live is { } itemsLive)
            {
                // Streamed as they come, a line a batch: nothing is collected, so no size limit applies.
                ReadOnlyMemory<byte> batch = ToJson(message);
                using (JsonDocument items = JsonDocument.Parse(batch)) Interlocked.Add(ref pending.ItemsSent, items.RootElement.GetArrayLength());
                await itemsLive.ItemsAsync(batch);
                return;
            }

            if (message.Kind == MessageKind.Items)
            {
                long size = Interlocked.Add(ref pending.ItemBytes, message.Body.Length);
                if (size > _maxCollectedBytes)
                {
                    // Collected for one response: past the limit the call is cancelled rather than the server's memory spent.
                    pending.TrySetResult(new IpyRpcMessage
                    {
                        Kind = MessageKind.Error,
                        Id = message.Id,
                        Parts = [new RemoteError { Code = ErrorCodes.TooLarge, Message = $"The stream's items pass {_maxCollectedBytes} bytes, the most a JSON-RPC response collects; ask for them as they come with Accept: application/x-ndjson, or call it over the binary protocol." }.Encode(Serialization.MessagePack)],
                    });
                    await _session.HandleAsync(new IpyRpcMessage { Kind = MessageKind.Cancel, Id = message.Id });
                    return;
                }

                lock (pending) (pending.Items ??= []).Add(message);
                return;
            }

            if (message.Kind == MessageKind.Progress)
            {
                // Only a streamed response has a place for reports before its end.
                if (pending.Live is { } progressLive) await progressLive.ProgressAsync(ToJson(message));
                return;
            }

            pending.TrySetResult(message);
        }

        public async ValueTask DisposeAsync()
        {
            if (Interlocked.Exchange(ref _disposed, 1) == 1) return;
            await _session.DisposeAsync();
        }

        private sealed class Pending(Live? live) : IValueTaskSource<IpyRpcMessage>
        {
            // The request handler continues right where the result arrives: it only writes the response. The pending
            // call is its own awaitable, awaited once: no completion source and no Task a call.
            private ManualResetValueTaskSourceCore<IpyRpcMessage> _done;
            private int _completed;

            /// <summary>The call's final message (its result or error), awaited once by the request handler.</summary>
            public ValueTask<IpyRpcMessage> Done => new(this, _done.Version);

            /// <summary>Completes the call with <paramref name="message"/>; false if it was completed already (a result racing an abort).</summary>
            public bool TrySetResult(IpyRpcMessage message)
            {
                if (Interlocked.Exchange(ref _completed, 1) != 0) return false;
                _done.SetResult(message);
                return true;
            }

            IpyRpcMessage IValueTaskSource<IpyRpcMessage>.GetResult(short token) => _done.GetResult(token);

            ValueTaskSourceStatus IValueTaskSource<IpyRpcMessage>.GetStatus(short token) => _done.GetStatus(token);

            void IValueTaskSource<IpyRpcMessage>.OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags)
                => _done.OnCompleted(continuation, state, token, flags);

            // Made with the first piece of output or batch of items (most calls have neither); under a lock on this Pending.
            public List<(OutputStream Stream, string Text)>? Output { get; set; }

            public List<IpyRpcMessage>? Items { get; set; }

            public long ItemBytes;

            /// <summary>Items sent as <c>ipyrpc.items</c> lines (a streamed response collects none).</summary>
            public long ItemsSent;

            public Live? Live { get; } = live;

            public ulong Id { get; init; }

            public required Calls Owner { get; init; }

            /// <summary>The request carrying the call was aborted: the call is abandoned as a disconnect would, and its request handler ends.</summary>
            public void Abandon()
            {
                _ = Owner._session.AbandonAsync(Id).AsTask();
                TrySetResult(new IpyRpcMessage
                {
                    Kind = MessageKind.Error,
                    Id = Id,
                    Parts = [new RemoteError { Code = ErrorCodes.Cancelled, Message = "The HTTP request carrying this call was aborted." }.Encode(Serialization.MessagePack)],
                });
            }
        }
    }
}
