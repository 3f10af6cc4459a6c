using IpyRpc;

namespace IpyRpc.Tests.Calls;

/// <summary>Every supported parameter and return shape, through the in-process transport (real bytes), in both serializations.</summary>
public sealed class CallShapeTests
{
    public static TheoryData<Serialization> Serializations => new() { Serialization.MessagePack, Serialization.Json };

    private static Shapes Sample() => new(
        Flag: true, U8: 250, I8: -100, I16: -30000, U16: 60000, I32: -2_000_000_000, U32: 4_000_000_000, I64: long.MinValue, U64: ulong.MaxValue,
        F32: 1.5f, F64: Math.PI, Money: 12345.6789m, Letter: 'λ', Text: "héllo ❤", Bytes: [0, 1, 254, 255], Color: Color.Blue,
        MaybeInt: null, Samples: [1.5, -2.25, double.MaxValue], Names: ["a", "b"], Points: [new Point(1, 2), new Point(3, 4)],
        Counts: new() { ["x"] = 1, ["y"] = 2 }, Pair: (7, "seven"), Id: Guid.NewGuid(), When: new DateTime(2024, 2, 29, 12, 30, 15, 123, DateTimeKind.Utc),
        WhenWithOffset: new DateTimeOffset(2024, 2, 29, 12, 30, 15, TimeSpan.FromHours(5.5)), Duration: new TimeSpan(1, 2, 3, 4, 567),
        Pixel: new Pixel { R = 1, G = 2, B = 3 },
        Box: new Box { Label = "box", Sizes = [1, 2, 3], Corner = new Point(-1, -2), Weights = new() { ["w"] = 0.5 } },
        Tree: new Node("root", [new Node("a", []), new Node("b", [new Node("c", [])])]));

    [Theory]
    [MemberData(nameof(Serializations))]
    public async Task AParamsArrayGathersThePositionalArgumentsPastTheOthers(Serialization serialization)
    {
        await using InProcess p = await InProcess.StartAsync(serialization);
        FunctionDescriptor join = p.Client.Functions.Single(f => f.Name == "join");
        Assert.Equal("join(separator: string, *parts: string[]) -> string", join.Signature);
        Assert.True(join.Parameters[1].IsParams);

        Assert.Equal("3:a-b-c", await p.Client.CallAsync<string>("join", "-", "a", "b", "c"));
        Assert.Equal("1:a", await p.Client.CallAsync<string>("join", "-", "a"));
        Assert.Equal("0:", await p.Client.CallAsync<string>("join", "-")); // none gathered: an empty array
        Assert.Equal("2:a-b", await p.Client.CallAsync<string>("join", "-", new[] { "a", "b" })); // one array in its place: taken as it is
        Assert.Equal("(null)", await p.Client.CallAsync<string>("join", ["-", null]));
        Assert.Equal("2:a+b", await p.Client.CallNamedAsync<string>("join", new Dictionary<string, object?> { ["separator"] = "+", ["parts"] = new[] { "a", "b" } }));
        Assert.Equal("0:", await p.Client.CallNamedAsync<string>("join", new Dictionary<string, object?> { ["separator"] = "+" }));
        Assert.Equal("2:x/y", await p.Client.Proxy<ShapeFunctionsClient>().Join("/", ["x", "y"]));

        Assert.Equal(6.5, await p.Client.CallAsync<double>("sum_of", 1, 2.0, 3.5));
        Assert.Equal(4.0, await p.Client.CallAsync<double>("sum_of", new[] { 1.5, 2.5 })); // a raw numeric array, as it is
        Assert.Equal(0.0, await p.Client.CallAsync<double>("sum_of"));

        // Each gathered value must still be of the element type, and says so.
        var e = await Assert.ThrowsAsync<InvalidArgumentsException>(() => p.Client.CallAsync<string>("join", "-", "a", 5));
        Assert.Equal("parts", e.Parameter);
        var missing = await Assert.ThrowsAsync<InvalidArgumentsException>(() => p.Client.CallAsync<string>("join"));
        Assert.Equal("separator", missing.Parameter);
    }

    [Theory]
    [MemberData(nameof(Serializations))]
    public async Task ARecordWithEverySupportedMemberTypeRoundTrips(Serialization serialization)
    {
        await using InProcess p = await InProcess.StartAsync(serialization);
        Shapes sent = Sample();
        Shapes back = await p.Client.Proxy<ShapeFunctionsClient>().EchoShapes(sent);

        Assert.Equal(sent.Flag, back.Flag);
        Assert.Equal((sent.U8, sent.I8, sent.I16, sent.U16, sent.I32, sent.U32, sent.I64, sent.U64), (back.U8, back.I8, back.I16, back.U16, back.I32, back.U32, back.I64, back.U64));
        Assert.Equal(sent.F32, back.F32);
        Assert.Equal(sent.F64, back.F64);
        Assert.Equal(sent.Money, back.Money);
        Assert.Equal(sent.Letter, back.Letter);
        Assert.Equal(sent.Text, back.Text);
        Assert.Equal(sent.Bytes, back.Bytes);
        Assert.Equal(sent.Color, back.Color);
        Assert.Null(back.MaybeInt);
        Assert.Equal(sent.Samples, back.Samples);
        Assert.Equal(sent.Names, back.Names);
        Assert.Equal(sent.Points, back.Points);
        Assert.Equal(sent.Counts, back.Counts);
        Assert.Equal(sent.Pair, back.Pair);
        Assert.Equal(sent.Id, back.Id);
        Assert.Equal(sent.When, back.When);
        Assert.Equal(sent.WhenWithOffset, back.WhenWithOffset);
        Assert.Equal(sent.Duration, back.Duration);
        Assert.Equal((1, 2, 3), (back.Pixel.R, back.Pixel.G, back.Pixel.B));
        Assert.Equal("box", back.Box.Label);
        Assert.Equal([1, 2, 3], back.Box.Sizes);
        Assert.Equal(new Point(-1, -2), back.Box.Corner);
        Assert.Equal(0.5, back.Box.Weights["w"]);
        Assert.Equal("root", back.Tree.Name);
        Assert.Equal("c", back.Tree.Children[1].Children[0].Name);
    }

    [Theory]
    [MemberData(nameof(Serializations))]
    public async Task SimpleShapesWorkThroughTheTypedProxy(Serialization serialization)
    {
        await using InProcess p = await InProcess.StartAsync(serialization);
        var f = p.Client.Proxy<ShapeFunctionsClient>();
        Assert.Equal(5, await f.Add(2, 3));
        Assert.Equal(7.0, await f.Scale(3.5));            // default factor honoured
        Assert.Equal(10.5, await f.Scale(3.5, 3));
        Assert.Equal("hello ann in Green", await f.Greet("ann"));
        Assert.Equal("hello bob in Red!", await f.Greet("bob", Color.Red, "!"));
        Assert.Equal(6.0, await f.Sum([1, 2, 3]));
        Assert.Equal(new byte[] { 3, 2, 1 }, await f.ReverseBytes([1, 2, 3]));
        Assert.Equal(4, await f.Tree.CountNodes(new Node("r", [new Node("a", []), new Node("b", [new Node("c", [])])])));
        await f.Nothing();
        await f.NothingAsync();
        await f.Tick();
        Assert.Equal([0, 1, 2, 3], await f.RangeAsync(4));
        Assert.Equal(new Point(0, 0), await f.Origin());
        Assert.Equal(42, await f.Maybe(true));
        Assert.Null(await f.Maybe(false));
        Assert.Equal(("x", 1), await f.Swap((1, "x")));
        Assert.Equal(1.5, await f.Total(new Dictionary<string, double> { ["a"] = 1, ["b"] = 0.5 }));
    }

    [Theory]
    [MemberData(nameof(Serializations))]
    public async Task DynamicCallsConvertArgumentsAndResults(Serialization serialization)
    {
        await using InProcess p = await InProcess.StartAsync(serialization);
        Assert.Equal(5, await p.Client.CallAsync<int>("add", 2, 3));
        Assert.Equal(5L, await p.Client.CallAsync("add", 2, 3));
        Assert.Equal(new Point(0, 0), await p.Client.CallAsync<Point>("origin"));
        Assert.Equal("hello zed in Blue", await p.Client.CallNamedAsync<string>("greet", new Dictionary<string, object?> { ["color"] = "Blue", ["name"] = "zed" }));
        Assert.Equal(12.0, await p.Client.CallNamedAsync<double>("scale", new Dictionary<string, object?> { ["value"] = 4, ["factor"] = 3 }));
        Assert.Equal("array of 3", await p.Client.CallAsync<string>("describe_value", new object?[] { new object?[] { 1, "x", null } }));
        Assert.Equal("map of 1", await p.Client.CallAsync<string>("describe_value", new Dictionary<string, object?> { ["k"] = 1 }));
        Assert.Equal("null", await p.Client.CallAsync<string>("describe_value", [null]));
    }

    [Theory]
    [MemberData(nameof(Serializations))]
    public async Task InstanceMethodsRunOnTheRegisteredInstance(Serialization serialization)
    {
        await using InProcess p = await InProcess.StartAsync(serialization);
        var counter = p.Client.Proxy<CounterClient>();
        Assert.Equal(1, await counter.Counter.Next());
        Assert.Equal(6, await counter.Counter.Next(5));
        Assert.Equal("1", await counter.Counter.Version());
    }

    [Fact]
    public async Task LargeNumericArraysTravelAsOneRawBlock()
    {
        await using InProcess p = await InProcess.StartAsync();
        double[] values = [.. Enumerable.Range(0, 1_000_000).Select(i => i * 0.5)];
        Assert.Equal(values.Sum(), await p.Client.Proxy<ShapeFunctionsClient>().Sum(values));

        // The encoding is the raw block: 8 bytes a value plus a few bytes of header, not a value-by-value array.
        var args = new IpyRpcArguments().Add(values, IpyRpc.Formatting.Formatters.DoubleArray);
        int encoded = args.Encode(Serialization.MessagePack).Length;
        Assert.InRange(encoded, 8_000_000, 8_000_020);
    }

    [Fact]
    public async Task RegisteringATypeWithoutAParameterlessConstructorAsksForAnInstance()
    {
        await using InProcess p = await InProcess.StartAsync();
        var e = Assert.Throws<ArgumentException>(() => p.Server.Register(typeof(NeedsArguments)));
        Assert.Contains("register an instance", e.Message);
        p.Server.Register(new NeedsArguments(">"));
        await p.Client.RefreshAsync();
        Assert.Equal(">x", await p.Client.CallAsync<string>("prefixed", "x"));
    }

    [Fact]
    public async Task TheSeedsRegisterUnderANameFormWorks()
    {
        await using InProcess p = await InProcess.StartAsync(configure: s => s.Register("plus", s.Find("add")!));
        await p.Client.RefreshAsync();
        Assert.Equal(9, await p.Client.CallAsync<int>("plus", 4, 5));
        Assert.Equal("plus(a: int, b: int) -> int", p.Client.Describe("plus").Signature);
    }
}
