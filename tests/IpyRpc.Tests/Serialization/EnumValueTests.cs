using IpyRpc.Protocol;

namespace IpyRpc.Tests;

/// <summary>What a file may be opened for; any combination.</summary>
[Flags]
public enum Access
{
    None = 0,
    Read = 1,
    Write = 2,
    Execute = 4,
}

/// <summary>A level that fits in a byte.</summary>
public enum Level : byte
{
    Low = 1,
    High = 200,
}

/// <summary>Functions over enums whose values are checked on arrival.</summary>
public static class EnumFunctions
{
    /// <summary>The access with write taken away.</summary>
    /// <param name="access">What is asked for.</param>
    [IpyRpcExport("enums.read_only")]
    public static Access ReadOnly(Access access) => access & ~Access.Write;

    /// <summary>Says which level it was given.</summary>
    /// <param name="level">A level.</param>
    [IpyRpcExport("enums.level")]
    public static string Describe(Level level) => $"{level}={(byte)level}";

    /// <summary>Says which shades it was given.</summary>
    /// <param name="shades">Shades.</param>
    [IpyRpcExport("enums.shades")]
    public static string Shades(List<Shade> shades) => string.Join(",", shades);

    /// <summary>A value of Shade that names no member, as a buggy function might return.</summary>
    [IpyRpcExport("enums.stray")]
    public static Shade Stray() => (Shade)9;
}

public sealed class EnumValueTests
{
    public static TheoryData<Serialization> Serializations => [Serialization.MessagePack, Serialization.Json];

    [Theory]
    [MemberData(nameof(Serializations))]
    public async Task ANumberThatNamesNoMemberIsRefusedWithTheMembersItCouldHaveBeen(Serialization serialization)
    {
        await using InProcess p = await InProcess.StartAsync(serialization, s => s.Register(typeof(EnumFunctions)));

        // Members by name (any case) and by number are read.
        Assert.Equal("Light,Dark,Light", await p.Client.CallAsync<string>("enums.shades", new object[] { new object[] { "light", 0, 1 } }));

        var stray = await Assert.ThrowsAsync<InvalidArgumentsException>(() => p.Client.CallAsync<string>("enums.shades", new object[] { new object[] { "Dark", 7 } }));
        Assert.Contains("7 is not a value of Shade (Dark=0, Light=1)", stray.Message);
        var negative = await Assert.ThrowsAsync<InvalidArgumentsException>(() => p.Client.CallAsync<string>("enums.shades", new object[] { new object[] { -1 } }));
        Assert.Contains("-1 is not a value of Shade", negative.Message);
        // A number's text and a list of names are not names of a plain enum.
        var text = await Assert.ThrowsAsync<InvalidArgumentsException>(() => p.Client.CallAsync<string>("enums.shades", new object[] { new object[] { "-1" } }));
        Assert.Contains("\"-1\" is not a member of Shade (members: Dark, Light)", text.Message);
        var both = await Assert.ThrowsAsync<InvalidArgumentsException>(() => p.Client.CallAsync<string>("enums.shades", new object[] { new object[] { "Dark, Light" } }));
        Assert.Contains("\"Dark, Light\" is not a member of Shade", both.Message);

        // The server keeps serving.
        Assert.Equal("Dark", await p.Client.CallAsync<string>("enums.shades", new object[] { new object[] { "dark" } }));
    }

    [Theory]
    [MemberData(nameof(Serializations))]
    public async Task ANumberPastTheUnderlyingTypeIsNotCutDownIntoAMember(Serialization serialization)
    {
        await using InProcess p = await InProcess.StartAsync(serialization, s => s.Register(typeof(EnumFunctions)));

        Assert.Equal("High=200", await p.Client.CallAsync<string>("enums.level", 200));
        // 456 is 200 in a byte's eight bits: it must not arrive as High.
        var wide = await Assert.ThrowsAsync<InvalidArgumentsException>(() => p.Client.CallAsync<string>("enums.level", 456));
        Assert.Contains("456 is not a value of Level (Low=1, High=200)", wide.Message);
    }

    [Theory]
    [MemberData(nameof(Serializations))]
    public async Task AFlagsEnumTakesAnyCombinationOfItsMembersAndNothingElse(Serialization serialization)
    {
        await using InProcess p = await InProcess.StartAsync(serialization, s => s.Register(typeof(EnumFunctions)));
        var enums = p.Client.Proxy<EnumFunctionsClient>().Enums;

        // Typed: a combination goes as its number and comes back as one.
        Assert.Equal(Access.Read | Access.Execute, await enums.ReadOnly(Access.Read | Access.Write | Access.Execute));
        Assert.Equal(Access.Read, await enums.ReadOnly(Access.Read));
        Assert.Equal(Access.None, await enums.ReadOnly(Access.Write));

        // Untyped: the number, or the names joined as .NET writes them.
        Assert.Equal(5L, Convert.ToInt64(await p.Client.CallAsync<object?>("enums.read_only", 7)));
        Assert.Equal(5L, Convert.ToInt64(await p.Client.CallAsync<object?>("enums.read_only", "read, write, execute")));
        Assert.Equal("Read", await p.Client.CallAsync<object?>("enums.read_only", 3));

        // A bit no member has is refused.
        var stray = await Assert.ThrowsAsync<InvalidArgumentsException>(() => p.Client.CallAsync<object?>("enums.read_only", 9));
        Assert.Contains("9 is not a value of Access (a combination of None=0, Read=1, Write=2, Execute=4)", stray.Message);
        var typed = await Assert.ThrowsAsync<InvalidArgumentsException>(() => enums.ReadOnly((Access)16));
        Assert.Contains("16 is not a value of Access", typed.Message);
        var name = await Assert.ThrowsAsync<InvalidArgumentsException>(() => p.Client.CallAsync<object?>("enums.read_only", "read, delete"));
        Assert.Contains("\"read, delete\" is not a member of Access (members: None, Read, Write, Execute; a combination is written \"A, B\")", name.Message);
    }

    [Theory]
    [MemberData(nameof(Serializations))]
    public async Task AResultThatIsNoValueOfItsEnumFailsTheTypedCallerNamingIt(Serialization serialization)
    {
        await using InProcess p = await InProcess.StartAsync(serialization, s => s.Register(typeof(EnumFunctions)));

        // Untyped, the number arrives as it was sent.
        Assert.Equal(9L, Convert.ToInt64(await p.Client.CallAsync<object?>("enums.stray")));
        // Typed, the caller is told what came, rather than holding a Shade that is none.
        var typed = await Assert.ThrowsAnyAsync<Exception>(() => p.Client.Proxy<EnumFunctionsClient>().Enums.Stray());
        Assert.Contains("9 is not a value of Shade", typed.Message);
    }
}
