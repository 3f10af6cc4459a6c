using System.Collections.Concurrent;

namespace IpyRpc.Formatting;

/// <summary>
/// Formatters by type, for dynamic calls (<c>client.CallAsync&lt;T&gt;("name", args…)</c>) that
/// only know values at run time. Generated code registers a formatter for every type an exported
/// function uses; the built-in types are always here. A dictionary lookup, not reflection.
/// </summary>
public static class FormatterRegistry
{
    private static readonly ConcurrentDictionary<Type, IpyRpcFormatter> Map = new();

    static FormatterRegistry()
    {
        foreach (IpyRpcFormatter f in new IpyRpcFormatter[]
        {
            Formatters.Boolean, Formatters.Byte, Formatters.SByte, Formatters.Int16, Formatters.UInt16,
            Formatters.Int32, Formatters.UInt32, Formatters.Int64, Formatters.UInt64, Formatters.Single,
            Formatters.Double, Formatters.Decimal, Formatters.Char, Formatters.String, Formatters.ByteArray,
            Formatters.Guid, Formatters.DateTime, Formatters.DateTimeOffset, Formatters.TimeSpan, Formatters.Object,
            Formatters.DoubleArray, Formatters.SingleArray, Formatters.Int32Array, Formatters.Int64Array,
            Formatters.Int16Array, Formatters.UInt16Array, Formatters.UInt32Array, Formatters.UInt64Array,
            Formatters.SByteArray, Formatters.DataFrame,
            Formatters.DateOnly, Formatters.TimeOnly, Formatters.Half, Formatters.Int128, Formatters.UInt128, Formatters.BigInteger,
            Formatters.Uri, Formatters.Version, Formatters.ReadOnlyByteMemory, Formatters.ByteMemory, Formatters.JsonElement,
            Formatters.DoubleTensor, Formatters.SingleTensor, Formatters.Int64Tensor, Formatters.Int32Tensor, Formatters.Int16Tensor, Formatters.SByteTensor,
            Formatters.UInt64Tensor, Formatters.UInt32Tensor, Formatters.UInt16Tensor, Formatters.ByteTensor,
            Formatters.DoubleArray2D, Formatters.DoubleArray3D, Formatters.SingleArray2D, Formatters.SingleArray3D, Formatters.Int32Array2D, Formatters.Int32Array3D, Formatters.Int64Array2D, Formatters.Int64Array3D, Formatters.Int16Array2D, Formatters.Int16Array3D,
            Formatters.UInt16Array2D, Formatters.UInt16Array3D, Formatters.UInt32Array2D, Formatters.UInt32Array3D, Formatters.UInt64Array2D, Formatters.UInt64Array3D, Formatters.SByteArray2D, Formatters.SByteArray3D, Formatters.ByteArray2D, Formatters.ByteArray3D,
            new SequenceFormatter<string?[], string?>(Formatters.String, static l => [.. l]),
            new SequenceFormatter<List<int>, int>(Formatters.Int32, static l => l),
            new SequenceFormatter<List<double>, double>(Formatters.Double, static l => l),
            new SequenceFormatter<List<string?>, string?>(Formatters.String, static l => l),
            new SequenceFormatter<object?[], object?>(Formatters.Object, static l => [.. l]),
            new SequenceFormatter<List<object?>, object?>(Formatters.Object, static l => l),
            new DictionaryFormatter<Dictionary<string, object?>, object?>(Formatters.Object, static d => d),
            new DictionaryFormatter<Dictionary<string, string?>, string?>(Formatters.String, static d => d),
            new DictionaryFormatter<Dictionary<string, int>, int>(Formatters.Int32, static d => d),
            new DictionaryFormatter<Dictionary<string, double>, double>(Formatters.Double, static d => d),
        })
        {
            Map[f.Type] = f;
        }
    }

    /// <summary>Adds or replaces the formatter for <typeparamref name="T"/>.</summary>
    public static void Register<T>(IpyRpcFormatter<T> formatter) => Map[typeof(T)] = formatter;

    /// <summary>Adds the formatter for <typeparamref name="T"/> unless one is already there.</summary>
    public static void TryRegister<T>(IpyRpcFormatter<T> formatter) => Map.TryAdd(typeof(T), formatter);

    /// <summary>The formatter for <paramref name="type"/>, if one is known.</summary>
    public static IpyRpcFormatter? Find(Type type) => Map.TryGetValue(type, out IpyRpcFormatter? f) ? f : null;

    /// <summary>The formatter for <typeparamref name="T"/>; throws a clear error when none is known.</summary>
    public static IpyRpcFormatter<T> Get<T>() => Find(typeof(T)) as IpyRpcFormatter<T>
        ?? throw new IpyRpcSerializationException(
            $"No formatter is known for {TypeNames.Display(typeof(T))}. Types get formatters when an [IpyRpcExport] method in a referenced assembly " +
            $"takes or returns them; otherwise call FormatterRegistry.Register, or use CallAsync<object> for plain data.");
}
