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
