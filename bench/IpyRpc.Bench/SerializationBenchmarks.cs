using System.Buffers;
using System.Text.Json;
using BenchmarkDotNet.Attributes;
using IpyRpc.Formatting;
using IpyRpc.MessagePack;

namespace IpyRpc.Bench;

/// <summary>
/// Our MessagePack and our JSON against System.Text.Json's source-generated serializer, on a small
/// record of nine ints and on a million doubles: write and read, nanoseconds and bytes allocated per operation.
/// </summary>
[MemoryDiagnoser]
public class SerializationBenchmarks
{
    private readonly Nine _nine = new(1, -2, 300, -40_000, 5_000_000, int.MaxValue, int.MinValue, 0, 42);
    private readonly double[] _doubles = [.. Enumerable.Range(0, 1_000_000).Select(i => i * 0.001)];
    private readonly ArrayBufferWriter<byte> _buffer = new(16 * 1024 * 1024);
    private readonly IpyRpcFormatter<Nine?> _nineFormatter = (IpyRpcFormatter<Nine?>)FormatterRegistry.Find(typeof(Nine))!;
    private Utf8JsonWriter _json = null!;
    private byte[] _nineMsgPack = [], _nineJson = [], _doublesMsgPack = [], _doublesJson = [];

    [GlobalSetup]
    public void Setup()
    {
        _json = new Utf8JsonWriter(_buffer);
        _nineMsgPack = Bytes(w => _nineFormatter.Write(ref w, _nine));
        _doublesMsgPack = Bytes(w => Formatters.DoubleArray.Write(ref w, _doubles));
        _nineJson = JsonSerializer.SerializeToUtf8Bytes(_nine, BenchJsonContext.Default.Nine);
        _doublesJson = JsonSerializer.SerializeToUtf8Bytes(_doubles, BenchJsonContext.Default.DoubleArray);
    }

    private delegate void WriteAction(MessagePackWriter writer);

    private static byte[] Bytes(WriteAction write)
    {
        var buffer = new ArrayBufferWriter<byte>();
        write(new MessagePackWriter(buffer));
        return buffer.WrittenSpan.ToArray();
    }

    [Benchmark(Description = "nine/write/ipyrpc-msgpack")]
    public int NineWriteMsgPack()
    {
        _buffer.ResetWrittenCount();
        var w = new MessagePackWriter(_buffer);
        _nineFormatter.Write(ref w, _nine);
        return _buffer.WrittenCount;
    }

    [Benchmark(Description = "nine/write/ipyrpc-json")]
    public int NineWriteJson()
    {
        _buffer.ResetWrittenCount();
        _json.Reset(_buffer);
        _nineFormatter.Write(_json, _nine);
        _json.Flush();
        return _buffer.WrittenCount;
    }

    [Benchmark(Description = "nine/write/stj-sourcegen")]
    public int NineWriteStj()
    {
        _buffer.ResetWrittenCount();
        _json.Reset(_buffer);
        JsonSerializer.Serialize(_json, _nine, BenchJsonContext.Default.Nine);
        return _buffer.WrittenCount;
    }

    [Benchmark(Description = "nine/read/ipyrpc-msgpack")]
    public Nine? NineReadMsgPack()
    {
        var r = new MessagePackReader(_nineMsgPack);
        return _nineFormatter.Read(ref r);
    }

    [Benchmark(Description = "nine/read/ipyrpc-json")]
    public Nine? NineReadJson()
    {
        var r = new Utf8JsonReader(_nineJson);
        r.Read();
        return _nineFormatter.Read(ref r);
    }

    [Benchmark(Description = "nine/read/stj-sourcegen")]
    public Nine? NineReadStj() => JsonSerializer.Deserialize(_nineJson, BenchJsonContext.Default.Nine);

    [Benchmark(Description = "doubles/write/ipyrpc-msgpack")]
    public int DoublesWriteMsgPack()
    {
        _buffer.ResetWrittenCount();
        var w = new MessagePackWriter(_buffer);
        Formatters.DoubleArray.Write(ref w, _doubles);
        return _buffer.WrittenCount;
    }

    [Benchmark(Description = "doubles/write/ipyrpc-json")]
    public int DoublesWriteJson()
    {
        _buffer.ResetWrittenCount();
        _json.Reset(_buffer);
        Formatters.DoubleArray.Write(_json, _doubles);
        _json.Flush();
        return _buffer.WrittenCount;
    }

    [Benchmark(Description = "doubles/write/stj-sourcegen")]
    public int DoublesWriteStj()
    {
        _buffer.ResetWrittenCount();
        _json.Reset(_buffer);
        JsonSerializer.Serialize(_json, _doubles, BenchJsonContext.Default.DoubleArray);
        return _buffer.WrittenCount;
    }

    [Benchmark(Description = "doubles/read/ipyrpc-msgpack")]
    public double[]? DoublesReadMsgPack()
    {
        var r = new MessagePackReader(_doublesMsgPack);
        return Formatters.DoubleArray.Read(ref r);
    }

    [Benchmark(Description = "doubles/read/ipyrpc-json")]
    public double[]? DoublesReadJson()
    {
        var r = new Utf8JsonReader(_doublesJson);
        r.Read();
        return Formatters.DoubleArray.Read(ref r);
    }

    [Benchmark(Description = "doubles/read/stj-sourcegen")]
    public double[]? DoublesReadStj() => JsonSerializer.Deserialize(_doublesJson, BenchJsonContext.Default.DoubleArray);
}
