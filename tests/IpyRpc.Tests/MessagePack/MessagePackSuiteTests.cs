using System.Buffers;
using System.Globalization;
using System.Text.Json;
using IpyRpc.Formatting;
using IpyRpc.MessagePack;

namespace IpyRpc.Tests.MessagePack;

/// <summary>
/// Every case of msgpack-test-suite (testdata/msgpack-test-suite, MIT, kawanet/msgpack-test-suite):
/// each listed encoding decodes to the value, and encoding the value gives the shortest listing.
/// </summary>
public sealed class MessagePackSuiteTests
{
    public static IEnumerable<object[]> Cases()
    {
        string path = Path.Combine(AppContext.BaseDirectory, "testdata", "msgpack-test-suite", "msgpack-test-suite.json");
        using JsonDocument doc = JsonDocument.Parse(File.ReadAllText(path));
        foreach (JsonProperty group in doc.RootElement.EnumerateObject())
        {
            int i = 0;
            foreach (JsonElement c in group.Value.EnumerateArray())
            {
                yield return [group.Name + "#" + i++, c.GetRawText()];
            }
        }
    }

    [Fact]
    public void TheSuiteHasEveryGroup()
    {
        string[] groups = [.. Cases().Select(c => ((string)c[0]).Split('#')[0]).Distinct()];
        Assert.Equal(15, groups.Length);
        Assert.Equal(85, Cases().Count());
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void EveryEncodingDecodesToTheValue(string name, string json)
    {
        using JsonDocument doc = JsonDocument.Parse(json);
        JsonElement c = doc.RootElement;
        foreach (JsonElement encoding in c.GetProperty("msgpack").EnumerateArray())
        {
            byte[] bytes = Hex(encoding.GetString()!);
            var reader = new MessagePackReader(bytes);
            AssertDecodes(c, ref reader, name + " " + encoding.GetString());
            Assert.True(reader.End, $"{name}: bytes left over after {encoding.GetString()}");
        }
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void EncodingGivesTheShortestListedForm(string name, string json)
    {
        using JsonDocument doc = JsonDocument.Parse(json);
        JsonElement c = doc.RootElement;
        string[] encodings = [.. c.GetProperty("msgpack").EnumerateArray().Select(e => e.GetString()!)];
        var buffer = new ArrayBufferWriter<byte>();
        var writer = new MessagePackWriter(buffer);
        Encode(c, ref writer);
        string ours = string.Join("-", buffer.WrittenSpan.ToArray().Select(b => b.ToString("x2")));

        // The suite lists the preferred, shortest form of the value's own type first (an integer
        // before the float32 that happens to hold it). Where another listed form ties it in
        // length (int64 and uint64 for 2^63-1), either is as short.
        string[] allowed = [.. encodings.Where(e => e.Length == encodings[0].Length)];
        Assert.True(allowed.Contains(ours), $"{name}: wrote {ours}, expected {string.Join(" or ", allowed)}");
        if (allowed.Length == 1)
        {
            Assert.Equal(encodings[0], ours);
        }
    }

    private static void AssertDecodes(JsonElement c, ref MessagePackReader reader, string what)
    {
        if (c.TryGetProperty("nil", out _))
        {
            reader.ReadNil();
        }
        else if (c.TryGetProperty("bool", out JsonElement b))
        {
            Assert.Equal(b.GetBoolean(), reader.ReadBoolean());
        }
        else if (c.TryGetProperty("binary", out JsonElement bin))
        {
            Assert.Equal(Hex(bin.GetString()!), reader.ReadBinary().ToArray());
        }
        else if (c.TryGetProperty("bignum", out JsonElement big))
        {
            string text = big.GetString()!;
            if (reader.NextType == MessagePackType.Float)
            {
                Assert.Equal(double.Parse(text, CultureInfo.InvariantCulture), reader.ReadDouble());
            }
            else if (text.StartsWith('-'))
            {
                Assert.Equal(long.Parse(text, CultureInfo.InvariantCulture), reader.ReadInt64());
            }
            else
            {
                Assert.Equal(ulong.Parse(text, CultureInfo.InvariantCulture), reader.ReadUInt64());
            }
        }
        else if (c.TryGetProperty("number", out JsonElement n))
        {
            if (reader.NextType == MessagePackType.Float || !n.TryGetInt64(out long l))
            {
                Assert.Equal(n.GetDouble(), reader.ReadDouble());
            }
            else if (l < 0)
            {
                Assert.Equal(l, reader.ReadInt64());
            }
            else
            {
                Assert.Equal((ulong)l, reader.ReadUInt64());
            }
        }
        else if (c.TryGetProperty("string", out JsonElement s))
        {
            Assert.Equal(s.GetString(), reader.ReadString());
        }
        else if (c.TryGetProperty("array", out JsonElement array))
        {
            AssertValue(array, ref reader);
        }
        else if (c.TryGetProperty("map", out JsonElement map))
        {
            AssertValue(map, ref reader);
        }
        else if (c.TryGetProperty("timestamp", out JsonElement ts))
        {
            (long seconds, uint nanos) = reader.ReadTimestamp();
            Assert.Equal(ts[0].GetInt64(), seconds);
            Assert.Equal(ts[1].GetUInt32(), nanos);
        }
        else if (c.TryGetProperty("ext", out JsonElement ext))
        {
            ReadOnlySpan<byte> data = reader.ReadExtension(out sbyte type);
            Assert.Equal(ext[0].GetInt32(), type);
            Assert.Equal(Hex(ext[1].GetString()!), data.ToArray());
        }
        else
        {
            Assert.Fail("Unknown case in " + what);
        }
    }

    // Arrays and maps in the suite hold numbers, strings and nested containers.
    private static void AssertValue(JsonElement expected, ref MessagePackReader reader)
    {
        switch (expected.ValueKind)
        {
            case JsonValueKind.Array:
                Assert.Equal(expected.GetArrayLength(), reader.ReadArrayHeader());
                foreach (JsonElement e in expected.EnumerateArray()) AssertValue(e, ref reader);
                break;
            case JsonValueKind.Object:
                Assert.Equal(expected.EnumerateObject().Count(), reader.ReadMapHeader());
                foreach (JsonProperty p in expected.EnumerateObject())
                {
                    Assert.Equal(p.Name, reader.ReadString());
                    AssertValue(p.Value, ref reader);
                }

                break;
            case JsonValueKind.Number:
                Assert.Equal(expected.GetInt64(), reader.ReadInt64());
                break;
            case JsonValueKind.String:
                Assert.Equal(expected.GetString(), reader.ReadString());
                break;
            default:
                Assert.Fail("Unexpected JSON in the suite: " + expected);
                break;
        }
    }

    private static void Encode(JsonElement c, ref MessagePackWriter writer)
    {
        if (c.TryGetProperty("nil", out _)) writer.WriteNil();
        else if (c.TryGetProperty("bool", out JsonElement b)) writer.Write(b.GetBoolean());
        else if (c.TryGetProperty("binary", out JsonElement bin)) writer.WriteBinary(Hex(bin.GetString()!));
        else if (c.TryGetProperty("bignum", out JsonElement big))
        {
            string text = big.GetString()!;
            if (text.StartsWith('-')) writer.Write(long.Parse(text, CultureInfo.InvariantCulture));
            else writer.Write(ulong.Parse(text, CultureInfo.InvariantCulture));
        }
        else if (c.TryGetProperty("number", out JsonElement n))
        {
            if (n.TryGetInt64(out long l)) writer.Write(l);
            else
            {
                // A fractional number: the shortest float that holds it exactly.
                double d = n.GetDouble();
                if ((double)(float)d == d) writer.Write((float)d);
                else writer.Write(d);
            }
        }
        else if (c.TryGetProperty("string", out JsonElement s)) writer.Write(s.GetString());
        else if (c.TryGetProperty("array", out JsonElement array)) EncodeValue(array, ref writer);
        else if (c.TryGetProperty("map", out JsonElement map)) EncodeValue(map, ref writer);
        else if (c.TryGetProperty("timestamp", out JsonElement ts)) writer.WriteTimestamp(ts[0].GetInt64(), ts[1].GetUInt32());
        else if (c.TryGetProperty("ext", out JsonElement ext)) writer.WriteExtension((sbyte)ext[0].GetInt32(), Hex(ext[1].GetString()!));
    }

    private static void EncodeValue(JsonElement value, ref MessagePackWriter writer)
    {
        switch (value.ValueKind)
        {
            case JsonValueKind.Array:
                writer.WriteArrayHeader(value.GetArrayLength());
                foreach (JsonElement e in value.EnumerateArray()) EncodeValue(e, ref writer);
                break;
            case JsonValueKind.Object:
                writer.WriteMapHeader(value.EnumerateObject().Count());
                foreach (JsonProperty p in value.EnumerateObject())
                {
                    writer.Write(p.Name);
                    EncodeValue(p.Value, ref writer);
                }

                break;
            case JsonValueKind.Number:
                writer.Write(value.GetInt64());
                break;
            case JsonValueKind.String:
                writer.Write(value.GetString());
                break;
        }
    }

    internal static byte[] Hex(string dashed) => dashed.Length == 0 ? [] : [.. dashed.Split('-').Select(h => Convert.ToByte(h, 16))];
}
