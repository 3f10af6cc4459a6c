using System.Collections.Concurrent;
using System.Collections.Immutable;
using System.Collections.ObjectModel;
using System.Numerics;
using System.Text.Json;
using IpyRpc.Protocol;

namespace IpyRpc.Tests;

/// <summary>A booking: a day, a time, tags that cannot change, and a link that may be missing.</summary>
/// <param name="Day">The day.</param>
/// <param name="At">The time of day.</param>
/// <param name="Tags">Its tags.</param>
/// <param name="Link">Where it is described.</param>
public sealed record Booking(DateOnly Day, TimeOnly At, ImmutableArray<string> Tags, Uri? Link);

/// <summary>Functions over framework types with a wire format of their own.</summary>
public static class FrameworkTypeFunctions
{
    /// <summary>The booking a day later, with a link.</summary>
    /// <param name="booking">The booking.</param>
    [IpyRpcExport("fw.postpone")]
    public static Booking Postpone(Booking booking) => booking with { Day = booking.Day.AddDays(1), Link = new Uri("https://example.com/b?id=1") };

    /// <summary>The time of day an hour and a half later.</summary>
    /// <param name="at">The time.</param>
    [IpyRpcExport("fw.later")]
    public static TimeOnly Later(TimeOnly at) => at.Add(TimeSpan.FromMinutes(90));

    /// <summary>n + 1, as each wide integer type.</summary>
    /// <param name="a">A signed 128-bit integer.</param>
    /// <param name="b">An unsigned one.</param>
    /// <param name="c">One of any size.</param>
    [IpyRpcExport("fw.next")]
    public static (Int128 A, UInt128 B, BigInteger C) Next(Int128 a, UInt128 b, BigInteger c) => (a + 1, b + 1, c + 1);

    /// <summary>Half of a half-precision number.</summary>
    /// <param name="h">The number.</param>
    [IpyRpcExport("fw.halve")]
    public static Half Halve(Half h) => h / (Half)2;

    /// <summary>The version with its minor part raised.</summary>
    /// <param name="v">The version.</param>
    [IpyRpcExport("fw.bump")]
    public static Version Bump(Version v) => new(v.Major, v.Minor + 1);

    /// <summary>What the address is.</summary>
    /// <param name="address">An absolute or relative address.</param>
    [IpyRpcExport("fw.where")]
    public static string Where(Uri address) => address.IsAbsoluteUri ? "absolute " + address.Host : "relative " + address.OriginalString;

    /// <summary>The bytes twice over.</summary>
    /// <param name="bytes">The bytes.</param>
    [IpyRpcExport("fw.twice")]
    public static ReadOnlyMemory<byte> Twice(Memory<byte> bytes) => bytes.ToArray().Concat(bytes.ToArray()).ToArray();

    /// <summary>The JSON value as it came.</summary>
    /// <param name="value">Any JSON value.</param>
    [IpyRpcExport("fw.json")]
    public static JsonElement Json(JsonElement value) => value;

    /// <summary>The value's kind.</summary>
    /// <param name="value">Any JSON value, or none.</param>
    [IpyRpcExport("fw.kind")]
    public static string Kind(JsonElement? value) => value?.ValueKind.ToString() ?? "none";

    /// <summary>The collections, each described in order.</summary>
    /// <param name="array">An immutable array.</param>
    /// <param name="list">An immutable list.</param>
    /// <param name="sorted">A sorted set.</param>
    /// <param name="queue">A queue.</param>
    /// <param name="map">An immutable dictionary.</param>
    /// <param name="byName">A sorted dictionary.</param>
    /// <param name="concurrent">A concurrent dictionary.</param>
    [IpyRpcExport("fw.collections")]
    public static string Collections(ImmutableArray<int> array, IImmutableList<string> list, SortedSet<int> sorted, Queue<string> queue,
        ImmutableDictionary<int, string> map, SortedDictionary<string, double> byName, ConcurrentDictionary<Guid, bool> concurrent)
        => $"{string.Join(",", array)} | {string.Join(",", list)} | {string.Join(",", sorted)} | {queue.Peek()} of {queue.Count} | "
            + $"{string.Join(",", map.OrderBy(kv => kv.Key).Select(kv => kv.Key + "=" + kv.Value))} | {string.Join(",", byName.Keys)} | {concurrent.Count(kv => kv.Value)}";

    /// <summary>0..n-1 pushed in turn: n-1 on top.</summary>
    /// <param name="n">How many.</param>
    [IpyRpcExport("fw.stack")]
    public static Stack<int> Pushed(int n)
    {
        var stack = new Stack<int>();
        for (int i = 0; i < n; i++) stack.Push(i);
        return stack;
    }

    /// <summary>The stack with one more pushed.</summary>
    /// <param name="stack">The stack.</param>
    [IpyRpcExport("fw.push")]
    public static Stack<int> Push(Stack<int> stack)
    {
        stack.Push(stack.Count == 0 ? 0 : stack.Peek() + 1);
        return stack;
    }

    /// <summary>Totals by day, each day moved on by one; readings by time, the earliest.</summary>
    /// <param name="totals">Totals by day.</param>
    /// <param name="readings">Readings by time.</param>
    [IpyRpcExport("fw.days")]
    public static (Dictionary<DateOnly, decimal> Totals, DateTime First) Days(Dictionary<DateOnly, decimal> totals, SortedDictionary<DateTime, double> readings)
        => (totals.ToDictionary(t => t.Key.AddDays(1), t => t.Value), readings.Keys.First());

    /// <summary>An immutable array never made (its default), and read-only views.</summary>
    [IpyRpcExport("fw.unmade")]
    public static (ImmutableArray<int> Unmade, ReadOnlyCollection<int> View, ReadOnlyDictionary<string, int> Map) Unmade()
        => (default, new List<int> { 1, 2 }.AsReadOnly(), new Dictionary<string, int> { ["a"] = 1 }.AsReadOnly());
}

public sealed class FrameworkTypesTests
{
    private static Task<InProcess> StartAsync(Serialization serialization)
        => InProcess.StartAsync(serialization, s => s.Register(typeof(FrameworkTypeFunctions)));

    [Theory]
    [InlineData(Serialization.MessagePack)]
    [InlineData(Serialization.Json)]
    public async Task DatesTimesAddressesAndVersionsTravelAsTheirText(Serialization serialization)
    {
        await using InProcess p = await StartAsync(serialization);
        FrameworkTypeFunctionsClient.FwNamespace fw = p.Client.Proxy<FrameworkTypeFunctionsClient>().Fw;

        Booking booked = await fw.Postpone(new Booking(new DateOnly(2026, 12, 31), new TimeOnly(9, 15, 30, 250), ["a", "b"], null));
        Assert.Equal(new DateOnly(2027, 1, 1), booked.Day);
        Assert.Equal(new TimeOnly(9, 15, 30, 250), booked.At);
        Assert.Equal(["a", "b"], booked.Tags.ToArray());
        Assert.Equal(new Uri("https://example.com/b?id=1"), booked.Link);
        Assert.Equal(new TimeOnly(0, 30), await fw.Later(new TimeOnly(23, 0)));
        Assert.Equal(new Version(2, 5), await fw.Bump(new Version(2, 4, 9)));
        Assert.Equal("absolute example.com", await fw.Where(new Uri("https://example.com/x")));
        Assert.Equal("relative docs/a b.md", await fw.Where(new Uri("docs/a b.md", UriKind.Relative)));

        // On the wire: ISO 8601 text, as any peer can read and write it.
        var plain = (Dictionary<string, object?>)(await p.Client.CallAsync<object?>("fw.postpone", new Dictionary<string, object?>
        {
            ["day"] = "2026-02-28", ["at"] = "07:05", ["tags"] = Array.Empty<object?>(), ["link"] = null,
        }))!;
        Assert.Equal("2026-03-01", plain["day"]);
        Assert.Equal("07:05:00", plain["at"]);
        Assert.Equal("https://example.com/b?id=1", plain["link"]);
        Assert.Equal("00:30:00.5", await p.Client.CallAsync<object?>("fw.later", "23:00:00.5"));
        Assert.Equal("1.1", await p.Client.CallAsync<object?>("fw.bump", "1.0.7"));
    }

    [Theory]
    [InlineData(Serialization.MessagePack)]
    [InlineData(Serialization.Json)]
    public async Task WideIntegersAreExactAndHalfPrecisionIsANumber(Serialization serialization)
    {
        await using InProcess p = await StartAsync(serialization);
        FrameworkTypeFunctionsClient.FwNamespace fw = p.Client.Proxy<FrameworkTypeFunctionsClient>().Fw;

        // (This assembly gives BigInteger a format of its own, its digits as text, in OwnFormatsTests: the built-in one is
        // called by a schema client in SchemaClientTests. Int128 and UInt128 here are the built-in formats.)
        BigInteger huge = BigInteger.Pow(10, 45);
        (Int128 a, UInt128 b, BigInteger c) = await fw.Next(Int128.MaxValue - 1, UInt128.MaxValue - 1, huge);
        Assert.Equal(Int128.MaxValue, a);
        Assert.Equal(UInt128.MaxValue, b);
        Assert.Equal(huge + 1, c);
        (a, b, c) = await fw.Next(-5, 6, (BigInteger)(-7));
        Assert.Equal((Int128)(-4), a);
        Assert.Equal((UInt128)7, b);
        Assert.Equal(new BigInteger(-6), c);
        Assert.Equal((Half)0.75, await fw.Halve((Half)1.5));

        // A value that fits 64 bits is a plain integer for any peer; past that, MessagePack carries the digits as text
        // and JSON as a number with every digit.
        var small = (object?[])(await p.Client.CallAsync<object?>("fw.next", 1L, 2L, "3"))!;
        Assert.Equal([2L, 3L, 4L], small.Select(v => Convert.ToInt64(v)));
        Assert.Equal(0.75, Convert.ToDouble(await p.Client.CallAsync<object?>("fw.halve", 1.5)));
        var text = (object?[])(await p.Client.CallAsync<object?>("fw.next", "-170141183460469231731687303715884105728", "0", huge.ToString()))!;
        if (serialization == Serialization.MessagePack)
        {
            Assert.Equal("-170141183460469231731687303715884105727", text[0]);
            Assert.Equal((huge + 1).ToString(), text[2]);
        }

        var negative = await Assert.ThrowsAsync<InvalidArgumentsException>(() => p.Client.CallAsync<object?>("fw.next", 1L, -1L, 0L));
        Assert.Equal("b", negative.Error.Parameter);
        Assert.Contains("-1", negative.Message);
        Assert.Contains("an unsigned 128-bit integer", negative.Message);
        var fraction = await Assert.ThrowsAsync<InvalidArgumentsException>(() => p.Client.CallAsync<object?>("fw.next", 1.5, 0L, 0L));
        Assert.Contains("Argument 'a' of fw.next must be Int128", fraction.Message);
        var tooBig = await Assert.ThrowsAsync<InvalidArgumentsException>(() => p.Client.CallAsync<object?>("fw.next", "170141183460469231731687303715884105728", 0L, 0L));
        Assert.Contains("is not a 128-bit integer", tooBig.Message);
    }

    [Theory]
    [InlineData(Serialization.MessagePack)]
    [InlineData(Serialization.Json)]
    public async Task TextThatIsNotTheTypeIsRefusedSayingWhatWasExpected(Serialization serialization)
    {
        await using InProcess p = await StartAsync(serialization);
        var day = await Assert.ThrowsAsync<InvalidArgumentsException>(() => p.Client.CallAsync<object?>("fw.postpone", new Dictionary<string, object?>
        {
            ["day"] = "2026-02-30", ["at"] = "07:05", ["tags"] = Array.Empty<object?>(),
        }));
        Assert.Contains("\"2026-02-30\" is not a date (yyyy-MM-dd)", day.Message);
        var time = await Assert.ThrowsAsync<InvalidArgumentsException>(() => p.Client.CallAsync<object?>("fw.later", "25:00"));
        Assert.Contains("\"25:00\" is not a time of day (HH:mm:ss[.fffffff])", time.Message);
        var version = await Assert.ThrowsAsync<InvalidArgumentsException>(() => p.Client.CallAsync<object?>("fw.bump", "one"));
        Assert.Contains("\"one\" is not a version", version.Message);
        var number = await Assert.ThrowsAsync<InvalidArgumentsException>(() => p.Client.CallAsync<object?>("fw.where", 5L));
        Assert.Contains("Argument 'address' of fw.where must be Uri", number.Message);
        Assert.Equal("relative x", await p.Client.CallAsync<string>("fw.where", "x")); // the server kept serving
    }

    [Theory]
    [InlineData(Serialization.MessagePack)]
    [InlineData(Serialization.Json)]
    public async Task AJsonElementCarriesAnyJsonValueAndByteMemoryItsBytes(Serialization serialization)
    {
        await using InProcess p = await StartAsync(serialization);
        FrameworkTypeFunctionsClient.FwNamespace fw = p.Client.Proxy<FrameworkTypeFunctionsClient>().Fw;

        const string Json = """{"name":"ann","sizes":[1,2.5,-3,18446744073709551615],"nested":{"ok":true,"none":null},"text":"héllo \"q\""}""";
        JsonElement back = await fw.Json(JsonDocument.Parse(Json).RootElement);
        Assert.Equal(Json, back.GetRawText());
        Assert.Equal("[]", (await fw.Json(JsonDocument.Parse("[]").RootElement)).GetRawText());
        Assert.Equal("\"just text\"", (await fw.Json(JsonDocument.Parse("\"just text\"").RootElement)).GetRawText());
        Assert.Equal("Object", await fw.Kind(JsonDocument.Parse("{}").RootElement));
        Assert.Equal("none", await fw.Kind(null));

        // A caller without the type sends plain data; it arrives as the same JSON.
        var plain = (Dictionary<string, object?>)(await p.Client.CallAsync<object?>("fw.json", new Dictionary<string, object?> { ["a"] = new object?[] { 1L, "b" } }))!;
        Assert.Equal([1L, "b"], ((object?[])plain["a"]!).Select(v => v is long or int ? Convert.ToInt64(v) : v));

        Assert.Equal(new byte[] { 1, 2, 3, 1, 2, 3 }, (await fw.Twice(new byte[] { 1, 2, 3 })).ToArray());
        Assert.Empty((await fw.Twice(Memory<byte>.Empty)).ToArray());
    }

    [Theory]
    [InlineData(Serialization.MessagePack)]
    [InlineData(Serialization.Json)]
    public async Task DictionariesKeyedByDaysAndTimesKeepTheirKeys(Serialization serialization)
    {
        await using InProcess p = await StartAsync(serialization);
        FrameworkTypeFunctionsClient.FwNamespace fw = p.Client.Proxy<FrameworkTypeFunctionsClient>().Fw;

        var early = new DateTime(2026, 12, 7, 8, 0, 0, DateTimeKind.Utc);
        (Dictionary<DateOnly, decimal> totals, DateTime first) = await fw.Days(
            new Dictionary<DateOnly, decimal> { [new DateOnly(2026, 12, 31)] = 12.5m, [new DateOnly(2026, 2, 28)] = 1m },
            new SortedDictionary<DateTime, double> { [early.AddHours(2)] = 2, [early] = 1 });
        Assert.Equal(12.5m, totals[new DateOnly(2027, 1, 1)]);
        Assert.Equal(1m, totals[new DateOnly(2026, 3, 1)]);
        Assert.Equal(early, first);

        // A caller without the types sends the keys as text.
        var plain = (object?[])(await p.Client.CallAsync<object?>("fw.days",
            new Dictionary<string, object?> { ["2026-01-31"] = 2L },
            new Dictionary<string, object?> { ["2026-12-07T08:00:00Z"] = 1.0 }))!;
        Assert.Equal(2m, Convert.ToDecimal(((Dictionary<string, object?>)plain[0]!)["2026-02-01"], System.Globalization.CultureInfo.InvariantCulture));
        var wrong = await Assert.ThrowsAsync<InvalidArgumentsException>(() => p.Client.CallAsync<object?>("fw.days",
            new Dictionary<string, object?> { ["31/01/2026"] = 2L }, new Dictionary<string, object?>()));
        Assert.Contains("The key \"31/01/2026\" is not a date (yyyy-MM-dd)", wrong.Message);
    }

    [Theory]
    [InlineData(Serialization.MessagePack)]
    [InlineData(Serialization.Json)]
    public async Task ImmutableSortedConcurrentAndStackCollectionsKeepTheirContentsAndOrder(Serialization serialization)
    {
        await using InProcess p = await StartAsync(serialization);
        FrameworkTypeFunctionsClient.FwNamespace fw = p.Client.Proxy<FrameworkTypeFunctionsClient>().Fw;

        var yes = Guid.NewGuid();
        string described = await fw.Collections(
            [3, 1, 2], ImmutableList.Create("x", "y"), new SortedSet<int> { 9, 4, 7 }, new Queue<string>(["first", "second"]),
            ImmutableDictionary<int, string>.Empty.Add(2, "two").Add(1, "one"),
            new SortedDictionary<string, double> { ["b"] = 2, ["a"] = 1 },
            new ConcurrentDictionary<Guid, bool>([new(yes, true), new(Guid.NewGuid(), false)]));
        Assert.Equal("3,1,2 | x,y | 4,7,9 | first of 2 | 1=one,2=two | a,b | 1", described);

        // A stack travels top first and stands as it stood: what was on top is on top again, both ways.
        Stack<int> stack = await fw.Pushed(3);
        Assert.Equal([2, 1, 0], stack);
        Assert.Equal([3, 2, 1, 0], await fw.Push(stack));
        Assert.Equal(new object?[] { 2L, 1L, 0L }, ((object?[])(await p.Client.CallAsync<object?>("fw.stack", 3))!).Select(v => (object?)Convert.ToInt64(v)));

        // An immutable array never made travels as nil (it has no items to enumerate) and comes back the same.
        (ImmutableArray<int> unmade, ReadOnlyCollection<int> view, ReadOnlyDictionary<string, int> map) = await fw.Unmade();
        Assert.True(unmade.IsDefault);
        Assert.Equal([1, 2], view);
        Assert.Equal(1, map["a"]);
    }
}
