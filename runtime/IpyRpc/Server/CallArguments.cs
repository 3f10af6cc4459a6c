using System.Text.Json;
using IpyRpc.Formatting;
using IpyRpc.MessagePack;
using IpyRpc.Protocol;

namespace IpyRpc;

/// <summary>
/// The arguments of one call, sliced but not yet decoded: positional (an array) or named (a
/// map/object), in MessagePack or JSON. Binding matches them to the function's parameters and
/// reports missing, extra and duplicate arguments by name before the method runs.
/// </summary>
public sealed class CallArguments
{
    private readonly ReadOnlyMemory<byte> _bytes;
    // A call's arguments are all positional or all named. The positional ones' extents go into an array made as
    // slicing starts (of the MessagePack header's count, or the function's parameter count) and grown past it; the
    // named ones' list is made with the first.
    private (int Offset, int Length)[]? _positional;
    private int _positionalCount;
    private List<(string Name, int Offset, int Length)>? _named;
    private static readonly List<(string Name, int Offset, int Length)> NoNamed = []; // read only, never added to

    private CallArguments(ReadOnlyMemory<byte> bytes, Serialization serialization)
    {
        _bytes = bytes;
        Serialization = serialization;
    }

    /// <summary>The serialization the arguments are in.</summary>
    public Serialization Serialization { get; }

    /// <summary>How many positional arguments there are.</summary>
    public int PositionalCount => _positionalCount;

    private List<(string Name, int Offset, int Length)> Named => _named ?? NoNamed;

    /// <summary>The names of the named arguments.</summary>
    public IEnumerable<string> Names => Named.Select(n => n.Name);

    /// <summary>Slices an arguments part. Empty bytes or nil/null mean no arguments.</summary>
    /// <exception cref="ArgumentBindingException">The part is neither an array nor a map, or is malformed.</exception>
    public static CallArguments Parse(ReadOnlyMemory<byte> bytes, Serialization serialization, string function) => Parse(bytes, serialization, function, expected: 0);

    /// <summary>
    /// Slices the arguments of a call to the function <paramref name="descriptor"/> describes; positional arguments
    /// past its others go into its <c>params</c> array, when it has one (<see cref="ParameterDescriptor.IsParams"/>).
    /// </summary>
    internal static CallArguments Parse(ReadOnlyMemory<byte> bytes, Serialization serialization, FunctionDescriptor descriptor)
    {
        CallArguments args = Parse(bytes, serialization, descriptor.Name, descriptor.Parameters.Count);
        return descriptor.Parameters is [.., { IsParams: true }] ? args.Gathered(descriptor) : args;
    }

    // The arguments again with the positional ones from the params parameter's place on made into one array; the same
    // arguments when they are named, or when one array (or null) stands in that place already.
    private CallArguments Gathered(FunctionDescriptor descriptor)
    {
        int k = descriptor.Parameters.Count - 1;
        if (_named is not null || _positionalCount < k) return this;
        if (_positionalCount == k + 1 && IsArrayOrNull(_positional![k])) return this;
        int extra = _positionalCount - k;
        var output = new System.Buffers.ArrayBufferWriter<byte>(_bytes.Length + 8);
        void Put(ReadOnlySpan<byte> bytes) => System.Buffers.BuffersExtensions.Write(output, bytes);
        if (Serialization == Serialization.Json)
        {
            Put("["u8);
            for (int i = 0; i < k; i++)
            {
                Put(Raw(_positional![i]));
                Put(","u8);
            }

            Put("["u8);
            for (int i = k; i < _positionalCount; i++)
            {
                if (i > k) Put(","u8);
                Put(Raw(_positional![i]));
            }

            Put("]]"u8);
        }
        else
        {
            var w = new MessagePackWriter(output);
            w.WriteArrayHeader(k + 1);
            for (int i = 0; i < k; i++) w.WriteRaw(Raw(_positional![i]));
            w.WriteArrayHeader(extra);
            for (int i = k; i < _positionalCount; i++) w.WriteRaw(Raw(_positional![i]));
        }

        return Parse(output.WrittenSpan.ToArray(), Serialization, descriptor.Name, k + 1);
    }

    // An array in any of its encodings (a MessagePack array, a raw numeric array extension, bin; a JSON array, an ndarray object), or null.
    private bool IsArrayOrNull((int Offset, int Length) slot)
    {
        ReadOnlySpan<byte> raw = Raw(slot);
        if (Serialization == Serialization.Json)
        {
            ReadOnlySpan<byte> text = raw.TrimStart(" \t\r\n"u8);
            return text.Length > 0 && (text[0] is (byte)'[' or (byte)'n' || (text[0] == (byte)'{' && text.IndexOf("\"ndarray\""u8) >= 0));
        }

        var r = new MessagePackReader(raw);
        return r.NextType switch
        {
            MessagePackType.Array or MessagePackType.Nil or MessagePackType.Binary => true,
            MessagePackType.Extension => r.ReadExtensionHeader().Type is WireExtensions.NumericArray or WireExtensions.NdArray,
            _ => false,
        };
    }

    /// <summary><see cref="Parse(ReadOnlyMemory{byte}, Serialization, string)"/>, expecting about <paramref name="expected"/> positional arguments (the function's parameter count).</summary>
    internal static CallArguments Parse(ReadOnlyMemory<byte> bytes, Serialization serialization, string function, int expected)
    {
        var args = new CallArguments(bytes, serialization);
        if (bytes.IsEmpty)
        {
            return args;
        }

        try
        {
            if (serialization == Serialization.Json) args.SliceJson(function, expected);
            else args.SliceMessagePack(function);
        }
        catch (Exception e) when (e is IpyRpcSerializationException or JsonException)
        {
            throw new ArgumentBindingException(new RemoteError
            {
                Code = ErrorCodes.InvalidArguments,
                Message = $"The arguments of {function} are malformed: {e.Message}",
            });
        }

        return args;
    }

    private void SliceMessagePack(string function)
    {
        var r = new MessagePackReader(_bytes.Span);
        switch (r.NextType)
        {
            case MessagePackType.Nil:
                r.ReadNil();
                break;
            case MessagePackType.Array:
                int n = r.ReadArrayHeader();
                if (n > 0) _positional = new (int, int)[Math.Min(n, 64)]; // a count the reader checked against the bytes left, where one byte can be an element: past 64 the array grows as elements are read
                for (int i = 0; i < n; i++) AddPositional(r.ReadRawRange());
                break;
            case MessagePackType.Map:
                int m = r.ReadMapHeader();
                for (int i = 0; i < m; i++)
                {
                    int at = r.Position;
                    string name = r.ReadString() ?? throw new MessagePackSerializationException("An argument name must be a string", at);
                    (int offset, int length) = r.ReadRawRange();
                    (_named ??= new(Math.Min(m, 64))).Add((name, offset, length));
                }

                break;
            default:
                throw Shape(function, MessagePackReader.Describe(r.NextType));
        }

        if (!r.End)
        {
            throw new MessagePackSerializationException($"{r.Remaining} unexpected bytes after the arguments", r.Position);
        }
    }

    private void AddPositional((int Offset, int Length) slot)
    {
        if (_positional is null || _positionalCount == _positional.Length) Array.Resize(ref _positional, Math.Max(4, 2 * _positionalCount));
        _positional[_positionalCount++] = slot;
    }

    private void SliceJson(string function, int expected)
    {
        var r = new Utf8JsonReader(_bytes.Span, new JsonReaderOptions { MaxDepth = 64 });
        Formatting.Json.JsonRead.Next(ref r);
        switch (r.TokenType)
        {
            case JsonTokenType.Null:
                break;
            case JsonTokenType.StartArray:
                if (expected > 0) _positional = new (int, int)[expected];
                while (true)
                {
                    Formatting.Json.JsonRead.Next(ref r);
                    if (r.TokenType == JsonTokenType.EndArray) break;
                    int start = (int)r.TokenStartIndex;
                    r.Skip();
                    AddPositional((start, (int)r.BytesConsumed - start));
                }

                break;
            case JsonTokenType.StartObject:
                while (true)
                {
                    Formatting.Json.JsonRead.Next(ref r);
                    if (r.TokenType == JsonTokenType.EndObject) break;
                    string name = r.GetString()!;
                    Formatting.Json.JsonRead.Next(ref r);
                    int start = (int)r.TokenStartIndex;
                    r.Skip();
                    (_named ??= []).Add((name, start, (int)r.BytesConsumed - start));
                }

                break;
            default:
                throw Shape(function, Formatting.Json.JsonRead.Describe(r.TokenType));
        }

        if (r.Read())
        {
            throw new IpyRpcSerializationException("Unexpected data after the arguments");
        }
    }

    private static ArgumentBindingException Shape(string function, string found) => new(new RemoteError
    {
        Code = ErrorCodes.InvalidArguments,
        Message = $"The arguments of {function} must be an array (positional) or a map (named), not {found}",
    });

    /// <summary>
    /// Matches the arguments to <paramref name="descriptor"/>'s parameters. Returns one slot per
    /// parameter: the argument's extent, or (-1, 0) when it was not given.
    /// </summary>
    public (int Offset, int Length)[] Bind(FunctionDescriptor descriptor)
    {
        (int Offset, int Length)[] slots = BindShared(descriptor);
        return ReferenceEquals(slots, _positional) ? [.. slots] : slots;
    }

    /// <summary>
    /// <see cref="Bind"/>, but when every parameter was given positionally, in order, the slots are the
    /// arguments' own array: not to be written to.
    /// </summary>
    internal (int Offset, int Length)[] BindShared(FunctionDescriptor descriptor)
    {
        if (descriptor.TakesAnyArguments) return [];
        IReadOnlyList<ParameterDescriptor> parameters = descriptor.Parameters;
        if (_named is null && _positional is { } given && given.Length == parameters.Count && _positionalCount == given.Length)
        {
            return given; // nothing to match: the common call, with no array of its own
        }

        if (_positionalCount > parameters.Count)
        {
            throw new ArgumentBindingException(new RemoteError
            {
                Code = ErrorCodes.InvalidArguments,
                Message = $"{descriptor.Name} takes {Count(parameters.Count)} but {_positionalCount} were given. Signature: {descriptor.Signature}",
            });
        }

        var slots = new (int Offset, int Length)[parameters.Count];
        for (int i = 0; i < slots.Length; i++)
        {
            slots[i] = i < _positionalCount ? _positional![i] : (-1, 0);
        }

        foreach ((string name, int offset, int length) in Named)
        {
            int index = -1;
            for (int i = 0; i < parameters.Count; i++)
            {
                if (parameters[i].Name == name)
                {
                    index = i;
                    break;
                }
            }

            if (index < 0)
            {
                throw new ArgumentBindingException(new RemoteError
                {
                    Code = ErrorCodes.InvalidArguments,
                    Parameter = name,
                    Message = $"{descriptor.Name} has no parameter named '{name}'. Signature: {descriptor.Signature}",
                });
            }

            if (slots[index].Offset >= 0)
            {
                throw new ArgumentBindingException(new RemoteError
                {
                    Code = ErrorCodes.InvalidArguments,
                    Parameter = name,
                    Message = $"{descriptor.Name} got more than one value for '{name}'",
                });
            }

            slots[index] = (offset, length);
        }

        return slots;
    }

    private static string Count(int n) => n == 1 ? "1 argument" : $"{n} arguments";

    /// <summary>
    /// Checks that the arguments fit <paramref name="descriptor"/>'s parameters (no extra or unknown ones, every required
    /// one given) without decoding them: for a job that will run elsewhere, so its submitter hears of a misfit at once.
    /// </summary>
    /// <exception cref="ArgumentBindingException">They do not fit; the error says how, as the invocation would.</exception>
    internal void CheckFits(FunctionDescriptor descriptor)
    {
        (int Offset, int Length)[] slots = BindShared(descriptor);
        for (int i = 0; i < slots.Length; i++)
        {
            ParameterDescriptor p = descriptor.Parameters[i];
            if (slots[i].Offset < 0 && !p.IsOptional) throw Missing(descriptor, p);
        }
    }

    /// <summary>
    /// Reads each argument given with its parameter's formatter and drops the value: for a job submitted to run later,
    /// perhaps elsewhere, so a value of the wrong type is refused while its submitter waits. A pointer (or an argument
    /// with pointers inside) is left to be resolved and read where the job runs.
    /// </summary>
    /// <exception cref="ArgumentBindingException">An argument cannot be read as its parameter's type; the error is the invocation's.</exception>
    internal void CheckTypes(FunctionDescriptor descriptor, IReadOnlyList<IpyRpcFormatter> formatters)
    {
        (int Offset, int Length)[] slots = BindShared(descriptor);
        for (int i = 0; i < slots.Length && i < formatters.Count; i++)
        {
            if (slots[i].Offset < 0) continue;
            ReadOnlySpan<byte> raw = Raw(slots[i]);
            if (raw.IndexOf("ipyrpc_data_pointer"u8) >= 0) continue;
            try
            {
                if (Serialization == Serialization.Json)
                {
                    var reader = new Utf8JsonReader(raw, new JsonReaderOptions { MaxDepth = 64 });
                    reader.Read();
                    formatters[i].ReadObject(ref reader);
                }
                else
                {
                    var reader = new MessagePackReader(raw);
                    formatters[i].ReadObject(ref reader);
                    if (!reader.End) throw new MessagePackSerializationException("Unexpected bytes after the value", reader.Position);
                }
            }
            catch (Exception e) when (e is IpyRpcSerializationException or JsonException or FormatException or OverflowException or InvalidOperationException)
            {
                throw WrongType(descriptor, descriptor.Parameters[i], ": " + e.Message);
            }
        }
    }

    /// <summary>The error for an argument that cannot be read as its parameter's type; <paramref name="why"/> ends the sentence (": …").</summary>
    internal static ArgumentBindingException WrongType(FunctionDescriptor descriptor, ParameterDescriptor p, string why) => new(new RemoteError
    {
        Code = ErrorCodes.InvalidArguments,
        Parameter = p.Name,
        Message = $"Argument '{p.Name}' of {descriptor.Name} must be {p.Type}{why}",
    });

    /// <summary>The error for a required argument the call left out.</summary>
    internal static ArgumentBindingException Missing(FunctionDescriptor descriptor, ParameterDescriptor p) => new(new RemoteError
    {
        Code = ErrorCodes.InvalidArguments,
        Parameter = p.Name,
        Message = $"{descriptor.Name} is missing the required argument '{p.Name}' ({p.Type}). Signature: {descriptor.Signature}",
    });

    /// <summary>The arguments by parameter name, decoded as plain data (for authorizers); parameters left to their defaults are absent.</summary>
    /// <exception cref="ArgumentBindingException">They do not fit the parameters.</exception>
    public IReadOnlyDictionary<string, object?> Plain(FunctionDescriptor descriptor)
    {
        (int Offset, int Length)[] slots = Bind(descriptor);
        var values = new Dictionary<string, object?>(slots.Length, StringComparer.Ordinal);
        for (int i = 0; i < slots.Length; i++)
        {
            if (slots[i].Offset < 0) continue;
            string name = descriptor.Parameters[i].Name;
            try
            {
                values[name] = Decode(slots[i], Formatters.Object);
            }
            catch (Exception e) when (e is IpyRpcSerializationException or JsonException or InvalidOperationException)
            {
                throw new ArgumentBindingException(new RemoteError { Code = ErrorCodes.InvalidArguments, Parameter = name, Message = $"Argument '{name}' of {descriptor.Name} could not be read: {e.Message}" });
            }
        }

        return values;
    }

    /// <summary>Every argument as plain data, positional and named, for a fallback handler.</summary>
    /// <exception cref="ArgumentBindingException">An argument could not be read.</exception>
    public (IReadOnlyList<object?> Positional, IReadOnlyDictionary<string, object?> Named) PlainAll(string function)
    {
        try
        {
            var positional = new List<object?>(_positionalCount);
            for (int i = 0; i < _positionalCount; i++) positional.Add(Decode(_positional![i], Formatters.Object));
            var named = new Dictionary<string, object?>(StringComparer.Ordinal);
            foreach ((string name, int offset, int length) in Named) named[name] = Decode((offset, length), Formatters.Object);
            return (positional, named);
        }
        catch (Exception e) when (e is IpyRpcSerializationException or JsonException or InvalidOperationException)
        {
            throw new ArgumentBindingException(new RemoteError { Code = ErrorCodes.InvalidArguments, Message = $"The arguments of {function} could not be read: {e.Message}" });
        }
    }

    /// <summary>The encoded bytes of the argument in <paramref name="slot"/>.</summary>
    internal ReadOnlySpan<byte> Raw((int Offset, int Length) slot) => _bytes.Span.Slice(slot.Offset, slot.Length);

    /// <summary><see cref="Raw"/>, as memory that can be held across an await.</summary>
    internal ReadOnlyMemory<byte> RawMemory((int Offset, int Length) slot) => _bytes.Slice(slot.Offset, slot.Length);

    /// <summary>Decodes the argument in <paramref name="slot"/> with <paramref name="formatter"/>.</summary>
    internal T Decode<T>((int Offset, int Length) slot, IpyRpcFormatter<T> formatter)
    {
        ReadOnlySpan<byte> bytes = _bytes.Span.Slice(slot.Offset, slot.Length);
        if (Serialization == Serialization.Json)
        {
            var reader = new Utf8JsonReader(bytes, new JsonReaderOptions { MaxDepth = 64 });
            reader.Read();
            return formatter.Read(ref reader);
        }

        var r = new MessagePackReader(bytes);
        T value = formatter.Read(ref r);
        if (!r.End)
        {
            throw new MessagePackSerializationException("Unexpected bytes after the value", r.Position);
        }

        return value;
    }
}

/// <summary>Arguments could not be matched to a function's parameters or decoded. Carries the error the caller gets.</summary>
public sealed class ArgumentBindingException(RemoteError error) : Exception(error.Message)
{
    /// <summary>The error sent to the caller.</summary>
    public RemoteError Error { get; } = error;
}
