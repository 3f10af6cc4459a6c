using System.Numerics;
using System.Text.Json;
using IpyRpc.Formatting;
using IpyRpc.MessagePack;
using IpyRpc.Protocol;

[assembly: IpyRpc.IpyRpcFormatter(typeof(IpyRpc.Tests.BigIntegerFormatter))]

namespace IpyRpc.Tests;

/// <summary>An amount in cents with its currency; travels as the text "12.50 EUR" through its own formatter.</summary>
[IpyRpcFormatter(typeof(MoneyFormatter))]
public readonly record struct Money(long Cents, string Currency)
{
    public override string ToString() => $"{Cents / 100}.{Math.Abs(Cents % 100):00} {Currency}";
}

/// <summary>Money as "12.50 EUR", in MessagePack and in JSON; anything else is refused with what was wrong.</summary>
public sealed class MoneyFormatter : IpyRpcFormatter<Money>
{
    public override void Write(ref MessagePackWriter writer, Money value) => writer.Write(value.ToString());

    public override Money Read(ref MessagePackReader reader)
    {
        int at = reader.Position;
        string text = reader.ReadString() ?? throw new MessagePackSerializationException("Money is a text such as \"12.50 EUR\", not nil", at);
        return Parse(text) ?? throw new MessagePackSerializationException($"\"{text}\" is not an amount such as \"12.50 EUR\"", at);
    }

    public override void Write(Utf8JsonWriter writer, Money value) => writer.WriteStringValue(value.ToString());

    public override Money Read(ref Utf8JsonReader reader)
    {
        string? text = reader.TokenType == JsonTokenType.String ? reader.GetString() : null;
        return Parse(text) ?? throw new IpyRpcSerializationException($"Expected an amount such as \"12.50 EUR\", not {reader.TokenType}");
    }

    private static Money? Parse(string? text)
        => text?.Split(' ') is [string amount, string currency] && decimal.TryParse(amount, System.Globalization.CultureInfo.InvariantCulture, out decimal d)
            ? new Money((long)(d * 100), currency)
            : null;
}

/// <summary>A framework type given a format by the assembly: BigInteger as its decimal digits.</summary>
public sealed class BigIntegerFormatter : IpyRpcFormatter<BigInteger>
{
    public override void Write(ref MessagePackWriter writer, BigInteger value) => writer.Write(value.ToString(System.Globalization.CultureInfo.InvariantCulture));

    public override BigInteger Read(ref MessagePackReader reader) => BigInteger.Parse(reader.ReadString()!, System.Globalization.CultureInfo.InvariantCulture);

    public override void Write(Utf8JsonWriter writer, BigInteger value) => writer.WriteStringValue(value.ToString(System.Globalization.CultureInfo.InvariantCulture));

    public override BigInteger Read(ref Utf8JsonReader reader) => BigInteger.Parse(reader.GetString()!, System.Globalization.CultureInfo.InvariantCulture);
}

/// <summary>A record with a member of a type with its own formatter.</summary>
/// <param name="Item">What is bought.</param>
/// <param name="Price">Its price.</param>
public sealed record Purchase(string Item, Money Price);

/// <summary>Functions over types with formatters of their own.</summary>
public static class ShopFunctions
{
    /// <summary>Twice the amount.</summary>
    /// <param name="m">The amount.</param>
    [IpyRpcExport("shop.double")]
    public static Money Double(Money m) => m with { Cents = m.Cents * 2 };

    /// <summary>The sum of amounts in one currency, or none for an empty list.</summary>
    /// <param name="amounts">The amounts.</param>
    [IpyRpcExport("shop.total")]
    public static Money? Total(List<Money> amounts) => amounts.Count == 0 ? null : new Money(amounts.Sum(a => a.Cents), amounts[0].Currency);

    /// <summary>A purchase with its price raised by a cent.</summary>
    /// <param name="p">The purchase.</param>
    [IpyRpcExport("shop.dearer")]
    public static Purchase Dearer(Purchase p) => p with { Price = p.Price with { Cents = p.Price.Cents + 1 } };

    /// <summary>How many times each number occurs.</summary>
    /// <param name="numbers">The numbers.</param>
    [IpyRpcExport("shop.histogram")]
    public static Dictionary<int, int> Histogram(int[] numbers) => numbers.GroupBy(n => n).ToDictionary(g => g.Key, g => g.Count());

    /// <summary>Each shade's count, doubled; keyed by an enum.</summary>
    /// <param name="counts">Counts by shade.</param>
    [IpyRpcExport("shop.shades")]
    public static IReadOnlyDictionary<Shade, long> Shades(Dictionary<Shade, long> counts) => counts.ToDictionary(c => c.Key, c => c.Value * 2);

    /// <summary>Names by id, echoed.</summary>
    /// <param name="names">Names by id.</param>
    [IpyRpcExport("shop.names")]
    public static Dictionary<Guid, string> Names(IDictionary<Guid, string> names) => new(names);

    /// <summary>n factorial, exactly.</summary>
    /// <param name="n">n.</param>
    [IpyRpcExport("shop.factorial")]
    public static BigInteger Factorial(int n)
    {
        BigInteger f = BigInteger.One;
        for (int i = 2; i <= n; i++) f *= i;
        return f;
    }
}

/// <summary>Shades, for enum keys.</summary>
public enum Shade
{
    Dark,
    Light,
}

public sealed class KeyedDictionaryTests
{
    [Theory]
    [InlineData(Serialization.MessagePack)]
    [InlineData(Serialization.Json)]
    public async Task DictionariesKeyedByIntegersEnumsAndGuidsTravelWithTheirKeys(Serialization serialization)
    {
        await using InProcess p = await InProcess.StartAsync(serialization, s => s.Register(typeof(ShopFunctions)));
        ShopFunctionsClient.ShopNamespace shop = p.Client.Proxy<ShopFunctionsClient>().Shop;

        Assert.Equal(new Dictionary<int, int> { [1] = 1, [-2] = 2, [3] = 1 }, await shop.Histogram([1, -2, -2, 3]));
        Assert.Equal(new Dictionary<Shade, long> { [Shade.Dark] = 2, [Shade.Light] = 6 }, await shop.Shades(new Dictionary<Shade, long> { [Shade.Dark] = 1, [Shade.Light] = 3 }));
        var notAShade = await Assert.ThrowsAsync<InvalidArgumentsException>(() => shop.Shades(new Dictionary<Shade, long> { [(Shade)7] = 3 }));
        Assert.Contains("7", notAShade.Message);
        Assert.Contains("Shade", notAShade.Message);
        var id = Guid.Parse("6f9619ff-8b86-d011-b42d-00cf4fc964ff");
        Assert.Equal("six", (await shop.Names(new Dictionary<Guid, string> { [id] = "six" }))[id]);

        // A caller without the types sends keys as text (as JSON must); names in any case and numbers are read.
        var fromText = (Dictionary<string, object?>)(await p.Client.CallAsync<object?>("shop.shades", new Dictionary<string, object?> { ["light"] = 5L, ["0"] = 1L }))!;
        Assert.Equal(10L, Convert.ToInt64(fromText["Light"]));
        Assert.Equal(2L, Convert.ToInt64(fromText["Dark"]));

        var wrongKey = await Assert.ThrowsAsync<InvalidArgumentsException>(() => p.Client.CallAsync<object?>("shop.shades", new Dictionary<string, object?> { ["dim"] = 1L }));
        Assert.Contains("The key \"dim\" is not a member of Shade (Dark, Light)", wrongKey.Message);
        var twice = await Assert.ThrowsAsync<InvalidArgumentsException>(() => p.Client.CallAsync<object?>("shop.shades", new Dictionary<string, object?> { ["light"] = 1L, ["1"] = 2L }));
        Assert.Contains("Duplicate", twice.Message);
        var notANumber = await Assert.ThrowsAsync<InvalidArgumentsException>(() => p.Client.CallAsync<object?>("shop.names", new Dictionary<string, object?> { ["seven"] = "x" }));
        Assert.Contains("is not a GUID", notANumber.Message);
    }
}

public sealed class CustomFormatterTests
{
    [Theory]
    [InlineData(Serialization.MessagePack)]
    [InlineData(Serialization.Json)]
    public async Task ATypeWithItsOwnFormatterTravelsInItsFormatEverywhereItIsUsed(Serialization serialization)
    {
        await using InProcess p = await InProcess.StartAsync(serialization, s => s.Register(typeof(ShopFunctions)));
        ShopFunctionsClient.ShopNamespace shop = p.Client.Proxy<ShopFunctionsClient>().Shop;

        Assert.Equal(new Money(2500, "EUR"), await shop.Double(new Money(1250, "EUR")));
        Assert.Equal(new Money(350, "EUR"), await shop.Total([new Money(100, "EUR"), new Money(250, "EUR")])); // in a list, and nullable
        Assert.Null(await shop.Total([]));
        Assert.Equal(new Purchase("tea", new Money(301, "GBP")), await shop.Dearer(new Purchase("tea", new Money(300, "GBP")))); // as a member
        Assert.Equal(BigInteger.Parse("815915283247897734345611269596115894272000000000"), await shop.Factorial(40)); // given by the assembly

        // On the wire it is the formatter's own text: a caller without the type sends and reads that.
        Assert.Equal("25.00 EUR", await p.Client.CallAsync<object?>("shop.double", "12.50 EUR"));
        Assert.Equal("815915283247897734345611269596115894272000000000", await p.Client.CallAsync<object?>("shop.factorial", 40));

        // The formatter's refusal reaches the caller as the argument's error.
        var e = await Assert.ThrowsAsync<InvalidArgumentsException>(() => p.Client.CallAsync<object?>("shop.double", "twelve euros"));
        Assert.Equal("m", e.Parameter);
        Assert.Contains("Argument 'm' of shop.double must be Money", e.Message);
    }

    [Fact]
    public async Task DescriptorsNameTheTypeAndMarkItsFormatAsTheTypesOwn()
    {
        await using InProcess p = await InProcess.StartAsync(configure: s => s.Register(typeof(ShopFunctions)));
        FunctionDescriptor f = p.Client.Functions.Single(d => d.Name == "shop.double");
        Assert.Equal("shop.double(m: Money) -> Money", f.Signature);
        using JsonDocument schema = JsonDocument.Parse(f.ReturnSchema!);
        Assert.Equal("custom", schema.RootElement.GetProperty("x-ipyrpc").GetString());
        Assert.Equal("Money", schema.RootElement.GetProperty("title").GetString());
        Assert.Contains("An amount in cents", schema.RootElement.GetProperty("description").GetString());
        Assert.False(schema.RootElement.TryGetProperty("type", out _)); // any JSON value: the formatter decides
    }
}
