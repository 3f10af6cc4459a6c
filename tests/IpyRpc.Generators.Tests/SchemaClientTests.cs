using System.Reflection;
using System.Text;
using IpyRpc;
using IpyRpc.Protocol;
using Microsoft.CodeAnalysis;

namespace IpyRpc.Generators.Tests;

/// <summary>
/// Clients generated from schema files (*.ipyrpc.json): the document a server writes is read back by the
/// generator into a typed proxy, records, enums and formatters, in a compilation that has none of the server's code.
/// </summary>
public sealed class SchemaClientTests
{
    /// <summary>A server whose functions use every shape a schema carries.</summary>
    private const string Shapes = """
        using System;
        using System.Collections.Generic;
        using System.Linq;
        using System.Runtime.CompilerServices;
        using System.Threading;
        using System.Threading.Tasks;
        using IpyRpc;

        namespace Server.Shapes;

        /// <summary>A point on a grid.</summary>
        /// <param name="X">Across.</param>
        /// <param name="Y">Down.</param>
        public readonly record struct Point(int X, int Y);

        /// <summary>A node of a tree: a type that contains itself.</summary>
        public sealed class Tree
        {
            /// <summary>The node's label.</summary>
            public string Label { get; set; } = "";

            /// <summary>The children, if any.</summary>
            public List<Tree>? Children { get; set; }

            /// <summary>How many nodes, computed (written, never read back).</summary>
            public int Size => 1 + (Children?.Count ?? 0);
        }

        /// <summary>A shade, stored in a byte.</summary>
        public enum Shade : byte
        {
            /// <summary>No light.</summary>
            Dark = 1,
            /// <summary>Some light.</summary>
            Light = 4,
        }

        /// <summary>Everything at once.</summary>
        /// <param name="Name">Its name.</param>
        /// <param name="Where">Where it is.</param>
        /// <param name="Shade">Its shade.</param>
        /// <param name="Tags">Tags by key.</param>
        /// <param name="Pair">A pair.</param>
        /// <param name="Maybe">An optional count.</param>
        /// <param name="Note">An optional note.</param>
        public sealed record Item(string Name, Point Where, Shade Shade, Dictionary<string, int[]> Tags, (int, string) Pair, int? Maybe, string? Note = null);

        public static class Functions
        {
            /// <summary>Echoes an item.</summary>
            /// <param name="item">The item.</param>
            /// <returns>The same item.</returns>
            [IpyRpcExport("shapes.item")]
            public static Item EchoItem(Item item) => item;

            /// <summary>Counts a tree's nodes.</summary>
            /// <param name="tree">The tree.</param>
            [IpyRpcExport("shapes.tree")]
            public static int CountTree(Tree tree) => 1 + (tree.Children?.Sum(CountTree) ?? 0);

            /// <summary>Makes a tree two levels deep.</summary>
            [IpyRpcExport("shapes.grow")]
            public static Tree Grow(string label) => new() { Label = label, Children = [new Tree { Label = label + ".1" }] };

            /// <summary>Defaults of every kind.</summary>
            [IpyRpcExport("shapes.defaults")]
            public static string Defaults(int n = 3, double f = 1.5, string s = "a \"quoted\" text", Shade shade = Shade.Light, Shade? maybe = null, bool flag = true)
                => $"{n}|{f}|{s}|{shade}|{maybe?.ToString() ?? "none"}|{flag}";

            /// <summary>Numbers, streamed.</summary>
            [IpyRpcExport("shapes.count")]
            public static async IAsyncEnumerable<Point> Count(int to, [EnumeratorCancellation] CancellationToken cancellationToken = default)
            {
                for (int i = 1; i <= to; i++)
                {
                    await Task.Yield();
                    yield return new Point(i, -i);
                }
            }

            /// <summary>Data of the built-in kinds.</summary>
            [IpyRpcExport("shapes.builtins")]
            public static (Guid, DateTime, byte[], double[,], TimeSpan) Builtins(Guid id, DateTime at, byte[] bytes, double[,] grid, TimeSpan span) => (id, at, bytes, grid, span);

            /// <summary>Nothing back.</summary>
            [IpyRpcExport("shapes.nothing")]
            public static Task Nothing(string @class) => Task.CompletedTask;

            /// <summary>Walks to a point, reporting each step.</summary>
            /// <param name="steps">How many steps.</param>
            /// <param name="progress">Where it is after each step.</param>
            [IpyRpcExport("shapes.walk")]
            public static int Walk(int steps, IProgress<Point> progress)
            {
                for (int i = 1; i <= steps; i++) progress.Report(new Point(i, i * 10));
                return steps;
            }

            /// <summary>A list of nullable shades.</summary>
            [IpyRpcExport("shapes.shades")]
            public static List<Shade?> Shades(IReadOnlyList<Shade> given) => [.. given.Select(s => (Shade?)s), null];
        }
        """;

    /// <summary>Calls every function of the Shapes server through the client generated from its schema, and says what came back.</summary>
    private const string Driver = """
        using System;
        using System.Collections.Generic;
        using System.Linq;
        using System.Text;
        using System.Threading.Tasks;
        using IpyRpc;
        using Client.Shapes;

        public static class Driver
        {
            public static async Task<string> Run(IpyRpcPeer peer)
            {
                var text = new StringBuilder();
                ShapesClient c = peer.Proxy<ShapesClient>();
                var item = new Item("box", new Point(2, 3), Shade.Dark, new Dictionary<string, int[]> { ["a"] = new[] { 1, 2 } }, (7, "seven"), null, "n");
                Item back = await c.Shapes.Item(item);
                text.AppendLine($"item {back.Name} {back.Where} {back.Shade} {string.Join(",", back.Tags["a"])} {back.Pair} {back.Maybe?.ToString() ?? "null"} {back.Note}");
                var tree = new Tree("root", new[] { new Tree("a", null, 0), new Tree("b", new[] { new Tree("b1", null, 0) }, 0) }, 0);
                text.AppendLine($"tree {await c.Shapes.Tree(tree)}");
                Tree grown = await c.Shapes.Grow("g");
                text.AppendLine($"grow {grown.Label} {grown.Children![0].Label} size {grown.Size}");
                text.AppendLine($"defaults {await c.Shapes.Defaults()}");
                text.AppendLine($"defaults {await c.Shapes.Defaults(1, 2.5, "x", Shade.Dark, Shade.Light, false)}");
                var points = new List<string>();
                await foreach (Point p in c.Shapes.Count(3)) points.Add($"{p.X}/{p.Y}");
                text.AppendLine($"count {string.Join(" ", points)}");
                var id = Guid.Parse("6f9619ff-8b86-d011-b42d-00cf4fc964ff");
                var at = new DateTime(2026, 12, 3, 4, 5, 6, DateTimeKind.Utc);
                var b = await c.Shapes.Builtins(id, at, new byte[] { 1, 2, 3 }, new double[,] { { 1, 2 }, { 3, 4 } }, TimeSpan.FromSeconds(90));
                text.AppendLine($"builtins {b.Item1} {b.Item2:O} {string.Join(",", b.Item3)} {b.Item4[1, 0]} {b.Item5}");
                await c.Shapes.Nothing("k");
                text.AppendLine("nothing done");
                List<string> shades = (await c.Shapes.Shades(new[] { Shade.Light, Shade.Dark })).Select(s => s?.ToString() ?? "null").ToList();
                text.AppendLine($"shades {string.Join(",", shades)}");
                var steps = new Steps();
                int walked = await c.Shapes.Walk(3, steps);
                text.AppendLine($"walk {walked} {string.Join(" ", steps.Seen)}");
                return text.ToString();
            }

            private sealed class Steps : IProgress<Point>
            {
                public readonly List<string> Seen = new();

                public void Report(Point value)
                {
                    lock (Seen) Seen.Add($"{value.X}/{value.Y}");
                }
            }
        }
        """;

    private static void Call(Func<object?> invoke)
    {
        try
        {
            invoke();
        }
        catch (TargetInvocationException e) when (e.InnerException is not null)
        {
            System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(e.InnerException);
        }
    }

    private static string RepositoryFile(params string[] parts)
    {
        for (DirectoryInfo? d = new(AppContext.BaseDirectory); d is not null; d = d.Parent)
        {
            if (File.Exists(Path.Combine(d.FullName, "IpyRpc.Generators.sln"))) return File.ReadAllText(Path.Combine([d.FullName, .. parts]));
        }

        throw new InvalidOperationException("The repository root is not above " + AppContext.BaseDirectory);
    }

    /// <summary>Compiles and loads the Shapes server, and writes its schema as `ipyrpc schema` would.</summary>
    private static async Task<(IpyRpcServer Server, string Schema)> ShapesServerAsync()
    {
        GeneratorHarness.Result server = GeneratorHarness.Run(Shapes);
        Assert.Empty(server.GeneratorDiagnostics.Where(d => d.Severity >= DiagnosticSeverity.Warning));
        Assert.Empty(server.CompileDiagnostics);
        Assembly assembly = GeneratorHarness.Load(server.Output);
        var host = new IpyRpcServer();
        host.Register(assembly.GetType("Server.Shapes.Functions")!);
        await using IpyRpcClient describing = await IpyRpcClient.ConnectInProcessAsync(host);
        return (host, Encoding.UTF8.GetString(OpenRpcDocument.Write(describing.Functions, "Shapes", "1.0.0", indented: true)));
    }

    [Fact]
    public async Task AClientGeneratedFromAServersSchemaCallsEveryShapeItCarries()
    {
        (IpyRpcServer server, string schema) = await ShapesServerAsync();
        await using IpyRpcServer _ = server;

        // The client's compilation has none of the server's code: only the schema and a driver that uses the proxy.
        GeneratorHarness.Result client = GeneratorHarness.RunWithSchemas([new("/project/Shapes.ipyrpc.json", schema, ns: "Client.Shapes")], Driver);
        Assert.Empty(client.GeneratorDiagnostics);
        Assert.Empty(client.CompileDiagnostics);
        Assert.Empty(client.Output.GetDiagnostics().Where(d => d.Severity == DiagnosticSeverity.Error));
        Assert.Equal(["Client_Shapes_ShapesClient.IpyRpc.g.cs", "Client_Shapes_ShapesClient.Types.IpyRpc.g.cs", "IpyRpc.Formatters.g.cs"], client.Sources.Keys.Order());

        Assembly assembly = GeneratorHarness.Load(client.Output);
        await using IpyRpcClient connection = await IpyRpcClient.ConnectInProcessAsync(server, new IpyRpcClientOptions { Output = (_, _) => { } });
        var run = (Task<string>)assembly.GetType("Driver")!.GetMethod("Run")!.Invoke(null, [connection])!;
        string[] lines = (await run).Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(
            [
                "item box Point { X = 2, Y = 3 } Dark 1,2 (7, seven) null n",
                "tree 4",
                "grow g g.1 size 2",
                "defaults 3|1.5|a \"quoted\" text|Light|none|True",
                "defaults 1|2.5|x|Dark|Light|False",
                "count 1/-1 2/-2 3/-3",
                "builtins 6f9619ff-8b86-d011-b42d-00cf4fc964ff 2026-12-03T04:05:06.0000000Z 1,2,3 3 00:01:30",
                "nothing done",
                "shades Light,Dark,null",
                "walk 3 1/10 2/20 3/30",
            ],
            lines);
    }

    [Fact]
    public async Task ATypeWithTheServersOwnFormatterReachesASchemaClientAsThePlainDataItsFormatterWrites()
    {
        GeneratorHarness.Result server = GeneratorHarness.Run("""
            using System.Text.Json;
            using IpyRpc;
            using IpyRpc.Formatting;
            using IpyRpc.MessagePack;

            namespace Server.Shop;

            /// <summary>Cents, travelling as "12.50".</summary>
            [IpyRpcFormatter(typeof(CentsFormatter))]
            public readonly record struct Cents(long Value);

            public sealed class CentsFormatter : IpyRpcFormatter<Cents>
            {
                public override void Write(ref MessagePackWriter writer, Cents value) => writer.Write((value.Value / 100m).ToString("0.00", System.Globalization.CultureInfo.InvariantCulture));
                public override Cents Read(ref MessagePackReader reader) => new((long)(decimal.Parse(reader.ReadString()!, System.Globalization.CultureInfo.InvariantCulture) * 100));
                public override void Write(Utf8JsonWriter writer, Cents value) => writer.WriteStringValue((value.Value / 100m).ToString("0.00", System.Globalization.CultureInfo.InvariantCulture));
                public override Cents Read(ref Utf8JsonReader reader) => new((long)(decimal.Parse(reader.GetString()!, System.Globalization.CultureInfo.InvariantCulture) * 100));
            }

            public static class Functions
            {
                /// <summary>Twice the amount.</summary>
                [IpyRpcExport("shop.double")]
                public static Cents Double(Cents amount) => new(amount.Value * 2);
            }
            """);
        await using IpyRpcServer host = HostOf(server, "Server.Shop.Functions");
        string schema = await SchemaOfAsync(host, "Shop");
        Assert.Contains("\"x-ipyrpc\": \"custom\"", schema);
        GeneratorHarness.Result client = GeneratorHarness.RunWithSchemas([new("/project/Shop.ipyrpc.json", schema, ns: "Client.Shop")], """
            using System.Threading.Tasks;
            using IpyRpc;
            using Client.Shop;

            public static class Driver
            {
                public static async Task<string> Run(IpyRpcPeer peer) => $"{await peer.Proxy<ShopClient>().Shop.Double("12.50")}";
            }
            """);
        Assert.Empty(client.GeneratorDiagnostics);
        Assert.Empty(client.CompileDiagnostics);
        Assert.Contains("public __Tasks.Task<object> Double(object amount,", client.Sources["Client_Shop_ShopClient.IpyRpc.g.cs"]);
        Assert.Equal("25.00", await RunDriverAsync(client, host));
    }

    [Fact]
    public async Task AFormatterGivenForATypeWithABuiltInFormatReplacesIt()
    {
        // A date and an enum, each given a format of the assembly's own: used, not passed over for the built-in one.
        GeneratorHarness.Result server = GeneratorHarness.Run("""
            using System;
            using System.Text.Json;
            using IpyRpc;
            using IpyRpc.Formatting;
            using IpyRpc.MessagePack;

            [assembly: IpyRpcFormatter(typeof(Server.Days.DayFormatter))]
            [assembly: IpyRpcFormatter(typeof(Server.Days.MoodFormatter))]

            namespace Server.Days;

            public enum Mood { Low, High }

            public sealed class DayFormatter : IpyRpcFormatter<DateTime>
            {
                public override void Write(ref MessagePackWriter writer, DateTime value) => writer.Write("day " + value.ToString("yyyy-MM-dd"));
                public override DateTime Read(ref MessagePackReader reader) => DateTime.Parse(reader.ReadString()!.Substring(4));
                public override void Write(Utf8JsonWriter writer, DateTime value) => writer.WriteStringValue("day " + value.ToString("yyyy-MM-dd"));
                public override DateTime Read(ref Utf8JsonReader reader) => DateTime.Parse(reader.GetString()!.Substring(4));
            }

            public sealed class MoodFormatter : IpyRpcFormatter<Mood>
            {
                public override void Write(ref MessagePackWriter writer, Mood value) => writer.Write(value == Mood.High ? "up" : "down");
                public override Mood Read(ref MessagePackReader reader) => reader.ReadString() == "up" ? Mood.High : Mood.Low;
                public override void Write(Utf8JsonWriter writer, Mood value) => writer.WriteStringValue(value == Mood.High ? "up" : "down");
                public override Mood Read(ref Utf8JsonReader reader) => reader.GetString() == "up" ? Mood.High : Mood.Low;
            }

            public static class Functions
            {
                /// <summary>The next day.</summary>
                [IpyRpcExport("days.next")]
                public static DateTime Next(DateTime day) => day.AddDays(1);

                /// <summary>The other mood.</summary>
                [IpyRpcExport("days.flip")]
                public static Mood Flip(Mood mood) => mood == Mood.High ? Mood.Low : Mood.High;
            }
            """);
        Assert.Empty(server.GeneratorDiagnostics.Where(d => d.Severity >= DiagnosticSeverity.Warning));
        Assert.Empty(server.CompileDiagnostics);
        await using IpyRpcServer host = HostOf(server, "Server.Days.Functions");
        await using IpyRpcClient client = await IpyRpcClient.ConnectInProcessAsync(host);
        Assert.Equal("day 2026-12-08", await client.CallAsync<object?>("days.next", "day 2026-12-07"));
        Assert.Equal("up", await client.CallAsync<object?>("days.flip", "down"));
    }

    [Fact]
    public async Task MapsKeyedByIntegersEnumsAndGuidsKeepTheirKeyTypesInASchemaClient()
    {
        GeneratorHarness.Result server = GeneratorHarness.Run("""
            using System;
            using System.Collections.Generic;
            using System.Linq;
            using IpyRpc;

            namespace Server.Keys;

            /// <summary>A season.</summary>
            public enum Season { Spring, Summer }

            public static class Functions
            {
                /// <summary>How often each number occurs.</summary>
                [IpyRpcExport("keys.histogram")]
                public static Dictionary<long, int> Histogram(int[] numbers) => numbers.GroupBy(n => (long)n).ToDictionary(g => g.Key, g => g.Count());

                /// <summary>Rain by season, doubled.</summary>
                [IpyRpcExport("keys.rain")]
                public static Dictionary<Season, double> Rain(Dictionary<Season, double> rain) => rain.ToDictionary(r => r.Key, r => r.Value * 2);

                /// <summary>Names by id.</summary>
                [IpyRpcExport("keys.names")]
                public static Dictionary<Guid, string> Names(Dictionary<Guid, string> names) => names;
            }
            """);
        Assert.Empty(server.GeneratorDiagnostics.Where(d => d.Severity >= DiagnosticSeverity.Warning));
        Assert.Empty(server.CompileDiagnostics);
        await using IpyRpcServer host = HostOf(server, "Server.Keys.Functions");
        string schema = await SchemaOfAsync(host, "Keys");
        GeneratorHarness.Result client = GeneratorHarness.RunWithSchemas([new("/project/Keys.ipyrpc.json", schema, ns: "Client.Keys")], """
            using System;
            using System.Collections.Generic;
            using System.Linq;
            using System.Threading.Tasks;
            using IpyRpc;
            using Client.Keys;

            public static class Driver
            {
                public static async Task<string> Run(IpyRpcPeer peer)
                {
                    var keys = peer.Proxy<KeysClient>().Keys;
                    Dictionary<long, int> histogram = await keys.Histogram(new[] { 7, 7, -1 });
                    Dictionary<Season, double> rain = await keys.Rain(new Dictionary<Season, double> { [Season.Summer] = 1.5 });
                    var id = Guid.Parse("6f9619ff-8b86-d011-b42d-00cf4fc964ff");
                    Dictionary<Guid, string> names = await keys.Names(new Dictionary<Guid, string> { [id] = "six" });
                    return $"{histogram[7]} {histogram[-1]} {rain[Season.Summer]} {names[id]}";
                }
            }
            """);
        Assert.Empty(client.GeneratorDiagnostics);
        Assert.Empty(client.CompileDiagnostics);
        Assert.Equal("2 1 3 six", await RunDriverAsync(client, host));
    }

    [Fact]
    public async Task AFlagsEnumStaysAFlagsEnumInItsSchemaAndItsSchemaClient()
    {
        GeneratorHarness.Result server = GeneratorHarness.Run("""
            using System;
            using System.Collections.Generic;
            using System.Linq;
            using IpyRpc;

            namespace Server.Access;

            /// <summary>What a file may be opened for.</summary>
            [Flags]
            public enum Rights : byte { None = 0, Read = 1, Write = 2, Execute = 4 }

            public static class Functions
            {
                /// <summary>The rights without write.</summary>
                [IpyRpcExport("access.read_only")]
                public static Rights ReadOnly(Rights rights) => rights & ~Rights.Write;

                /// <summary>Counts by rights, echoed.</summary>
                [IpyRpcExport("access.counts")]
                public static Dictionary<Rights, int> Counts(Dictionary<Rights, int> counts) => counts;
            }
            """);
        Assert.Empty(server.GeneratorDiagnostics.Where(d => d.Severity >= DiagnosticSeverity.Warning));
        Assert.Empty(server.CompileDiagnostics);
        await using IpyRpcServer host = HostOf(server, "Server.Access.Functions");
        string schema = await SchemaOfAsync(host, "Access");
        // The schema does not claim the value is one of the names: a number combining them is as valid.
        string compact = string.Concat(schema.Where(c => !char.IsWhiteSpace(c)));
        Assert.Contains("\"type\":[\"string\",\"integer\"],\"title\":\"Rights\"", compact);
        Assert.Contains("\"x-enum-flags\":true,\"x-enum-names\":[\"None\",\"Read\",\"Write\",\"Execute\"]", compact);
        GeneratorHarness.Result client = GeneratorHarness.RunWithSchemas([new("/project/Access.ipyrpc.json", schema, ns: "Client.Access")], """
            using System;
            using System.Collections.Generic;
            using System.Threading.Tasks;
            using IpyRpc;
            using Client.Access;

            public static class Driver
            {
                public static async Task<string> Run(IpyRpcPeer peer)
                {
                    var access = peer.Proxy<AccessClient>().Access;
                    Rights back = await access.ReadOnly(Rights.Read | Rights.Write | Rights.Execute);
                    Dictionary<Rights, int> counts = await access.Counts(new Dictionary<Rights, int> { [Rights.Read | Rights.Execute] = 2 });
                    bool flags = typeof(Rights).IsDefined(typeof(FlagsAttribute), false);
                    return $"{back} {counts[Rights.Read | Rights.Execute]} {flags}";
                }
            }
            """);
        Assert.Empty(client.GeneratorDiagnostics);
        Assert.Empty(client.CompileDiagnostics);
        Assert.Equal("Read, Execute 2 True", await RunDriverAsync(client, host));
    }

    [Fact]
    public async Task DatesTimesWideIntegersAndJsonValuesKeepTheirTypesInASchemaClient()
    {
        GeneratorHarness.Result server = GeneratorHarness.Run("""
            using System;
            using System.Collections.Immutable;
            using System.Numerics;
            using System.Text.Json;
            using IpyRpc;

            namespace Server.Framework;

            public static class Functions
            {
                /// <summary>The next day at the time given, an hour on.</summary>
                [IpyRpcExport("fw.later")]
                public static (DateOnly Day, TimeOnly At) Later(DateOnly day, TimeOnly at) => (day.AddDays(1), at.AddHours(1));

                /// <summary>Twice the number.</summary>
                [IpyRpcExport("fw.twice")]
                public static Int128 Twice(Int128 n, BigInteger unused, Half h) => n * 2;

                /// <summary>The value's "name", and the address's host.</summary>
                [IpyRpcExport("fw.describe")]
                public static string Describe(JsonElement value, Uri address, Version version, ImmutableArray<int> numbers, ReadOnlyMemory<byte> bytes)
                    => $"{value.GetProperty("name").GetString()} {address.Host} {version.Major} {numbers.Length} {bytes.Length}";

                /// <summary>Counts by day, a day later.</summary>
                [IpyRpcExport("fw.shift")]
                public static System.Collections.Generic.Dictionary<DateOnly, int> Shift(System.Collections.Generic.Dictionary<DateOnly, int> counts)
                    => System.Linq.Enumerable.ToDictionary(counts, c => c.Key.AddDays(1), c => c.Value);
            }
            """);
        Assert.Empty(server.GeneratorDiagnostics.Where(d => d.Severity >= DiagnosticSeverity.Warning));
        Assert.Empty(server.CompileDiagnostics);
        await using IpyRpcServer host = HostOf(server, "Server.Framework.Functions");
        string schema = await SchemaOfAsync(host, "Framework");
        Assert.Contains("\"format\": \"date\"", schema);
        // A map keyed by days says its keys are dates (JSON object keys are their text).
        using (var document = System.Text.Json.JsonDocument.Parse(schema))
        {
            System.Text.Json.JsonElement shift = document.RootElement.GetProperty("methods").EnumerateArray().Single(m => m.GetProperty("name").GetString() == "fw.shift");
            Assert.Equal("date", shift.GetProperty("params")[0].GetProperty("schema").GetProperty("propertyNames").GetProperty("format").GetString());
        }

        GeneratorHarness.Result client = GeneratorHarness.RunWithSchemas([new("/project/Framework.ipyrpc.json", schema, ns: "Client.Framework")], """
            using System;
            using System.Numerics;
            using System.Text.Json;
            using System.Threading.Tasks;
            using IpyRpc;
            using Client.Framework;

            public static class Driver
            {
                public static async Task<string> Run(IpyRpcPeer peer)
                {
                    var fw = peer.Proxy<FrameworkClient>().Fw;
                    (DateOnly day, TimeOnly at) = await fw.Later(new DateOnly(2026, 12, 31), new TimeOnly(23, 30));
                    Int128 twice = await fw.Twice(Int128.MaxValue / 4, BigInteger.One, (Half)0.5);
                    string described = await fw.Describe(JsonDocument.Parse("{\"name\": \"ann\"}").RootElement, new Uri("https://example.com/"),
                        new Version(3, 1), new[] { 1, 2 }, new byte[] { 9 });
                    System.Collections.Generic.Dictionary<DateOnly, int> shifted = await fw.Shift(new System.Collections.Generic.Dictionary<DateOnly, int> { [new DateOnly(2026, 1, 31)] = 4 });
                    return $"{day:yyyy-MM-dd} {at:HH:mm} {twice == (Int128.MaxValue / 4) * 2} {described} {shifted[new DateOnly(2026, 2, 1)]}";
                }
            }
            """);
        Assert.Empty(client.GeneratorDiagnostics);
        Assert.Empty(client.CompileDiagnostics);
        Assert.Equal("2027-01-01 00:30 True ann example.com 3 2 1 4", await RunDriverAsync(client, host));
    }

    private static IpyRpcServer HostOf(GeneratorHarness.Result server, string type)
    {
        var host = new IpyRpcServer();
        host.Register(GeneratorHarness.Load(server.Output).GetType(type)!);
        return host;
    }

    private static async Task<string> SchemaOfAsync(IpyRpcServer host, string title)
    {
        await using IpyRpcClient describing = await IpyRpcClient.ConnectInProcessAsync(host);
        return Encoding.UTF8.GetString(OpenRpcDocument.Write(describing.Functions, title, "1.0.0", indented: true));
    }

    private static async Task<string> RunDriverAsync(GeneratorHarness.Result client, IpyRpcServer host)
    {
        await using IpyRpcClient connection = await IpyRpcClient.ConnectInProcessAsync(host);
        return await (Task<string>)GeneratorHarness.Load(client.Output).GetType("Driver")!.GetMethod("Run")!.Invoke(null, [connection])!;
    }

    [Fact]
    public async Task TheGeneratedTypesAndProxyCarryTheServersDocs()
    {
        (IpyRpcServer server, string schema) = await ShapesServerAsync();
        await server.DisposeAsync();
        GeneratorHarness.Result client = GeneratorHarness.RunWithSchemas([new("/project/Shapes.ipyrpc.json", schema, ns: "Client.Shapes")], Driver);
        string types = client.Sources["Client_Shapes_ShapesClient.Types.IpyRpc.g.cs"];
        Assert.Contains("/// <summary>A point on a grid.</summary>", types);
        Assert.Contains("/// <param name=\"X\">Across.</param>", types);
        Assert.Contains("public record struct Point(int X, int Y);", types);
        // A documented member of a documented type keeps both docs; a nullable reference member is nullable.
        Assert.Contains("/// <param name=\"Where\">Where it is.</param>", types);
        Assert.Contains("string? Note", types);
        Assert.Contains("public enum Shade : byte", types);
        Assert.Contains("/// <summary>Some light.</summary>", types);
        Assert.Contains("Light = 4,", types);
        // Members the server may leave out are nullable; the computed member is read back by the client.
        Assert.Contains("public sealed record Tree(string? Label, global::Client.Shapes.Tree[]? Children, int Size);", types);
        Assert.Contains("public sealed record Item(string Name, global::Client.Shapes.Point Where, global::Client.Shapes.Shade Shade, global::System.Collections.Generic.Dictionary<string, int[]> Tags, (int, string) Pair, int? Maybe, string? Note);", types);

        string proxy = client.Sources["Client_Shapes_ShapesClient.IpyRpc.g.cs"];
        Assert.Contains("/// <summary>Echoes an item.</summary>", proxy);
        Assert.Contains("/// <param name=\"item\">The item.</param>", proxy);
        Assert.Contains("/// <returns>The same item.</returns>", proxy);
        Assert.Contains("string s = \"a \\\"quoted\\\" text\"", proxy);
        // The proxy lives in the client's namespace: its own types are written short there.
        Assert.Contains("Shade shade = Shade.Light", proxy);
        Assert.Contains("Walk(int steps, global::System.IProgress<Point>? progress = null,", proxy);
    }

    [Fact]
    public void TheSampleSchemaGeneratesTheCommittedSources()
    {
        GeneratorHarness.Result result = GeneratorHarness.RunWithSchemas(
            [new("/project/Calc.ipyrpc.json", RepositoryFile("samples", "SchemaClient", "Calc.ipyrpc.json"))]);
        Assert.Empty(result.GeneratorDiagnostics);
        Assert.Empty(result.CompileDiagnostics);
        foreach ((string hint, string source) in result.Sources)
        {
            Snapshot.Verify("Schema." + hint.Replace(".g.cs", ""), source);
        }
    }

    [Fact]
    public async Task ACallWhoseSignatureChangedOnTheServerFailsBeforeItIsSent()
    {
        // The server now has add(a, b, c) and no fail; echo is as the schema recorded it.
        GeneratorHarness.Result result = GeneratorHarness.RunWithSchemas(
            [new("/project/Quickstart.ipyrpc.json", RepositoryFile("samples", "SchemaClient", "Quickstart.ipyrpc.json"), ns: "Client")],
            """
            using IpyRpc;
            namespace Changed;
            public static class Functions
            {
                /// <summary>Adds three integers now.</summary>
                [IpyRpcExport("add")] public static int Add(int a, int b, int c) => a + b + c;
                /// <summary>Returns its argument unchanged.</summary>
                [IpyRpcExport("echo")] public static string Echo(string value) => value;
            }
            """);
        Assert.Empty(result.CompileDiagnostics);
        Assembly assembly = GeneratorHarness.Load(result.Output);
        await using var server = new IpyRpcServer();
        server.Register(assembly.GetType("Changed.Functions")!);
        await using IpyRpcClient client = await IpyRpcClient.ConnectInProcessAsync(server);
        Type proxyType = assembly.GetType("Client.QuickstartClient")!;
        object proxy = proxyType.GetMethod("Create")!.Invoke(null, [client])!;

        Assert.Equal("same", await (Task<string>)proxyType.GetMethod("Echo")!.Invoke(proxy, ["same", null, CancellationToken.None])!);

        // Thrown as the method is called, before anything is sent (reflection wraps it; a direct call does not).
        SchemaMismatchException changed = Assert.Throws<SchemaMismatchException>(
            () => Call(() => proxyType.GetMethod("Add")!.Invoke(proxy, [1, 2, null, CancellationToken.None])));
        Assert.Equal(ErrorCodes.SchemaMismatch, changed.Code);
        Assert.Contains("'add' changed on the server since Quickstart.ipyrpc.json was written", changed.Message);
        Assert.Contains("the schema has `add(a: int, b: int) -> int`, the server now has `add(a: int, b: int, c: int) -> int`", changed.Message);

        SchemaMismatchException gone = Assert.Throws<SchemaMismatchException>(
            () => Call(() => proxyType.GetMethod("Fail")!.Invoke(proxy, ["x", null, CancellationToken.None])));
        Assert.Contains("The server no longer has 'fail'", gone.Message);

        // Nothing reached the server: its job history has the echo alone.
        Assert.Equal(["echo"], (await server.Queue.ListAsync()).Select(j => j.Function));
    }

    private static GeneratorHarness.Result Generate(string schema)
        => GeneratorHarness.RunWithSchemas([new("/project/Broken.ipyrpc.json", schema)]);

    /// <summary>A server that publishes events: one under a two-level namespace with a payload no function uses, one without a namespace, and names that clash with their classes.</summary>
    private const string Feed = """
        using System;
        using IpyRpc;

        namespace Server.Feed;

        /// <summary>Which side of the book.</summary>
        public enum Side { Bid, Ask }

        /// <summary>A price tick.</summary>
        /// <param name="Symbol">The instrument.</param>
        /// <param name="Price">Its price.</param>
        /// <param name="Side">Its side.</param>
        public sealed record Tick(string Symbol, double Price, Side Side);

        public static class FeedEvents
        {
            /// <summary>A price changed.</summary>
            /// <remarks>Sent at most ten times a second.</remarks>
            [IpyRpcEvent] public static readonly IpyRpcEvent<Tick> Ticked = new("feed.prices.ticked");

            /// <summary>The feed restarted; the payload is how many times.</summary>
            [IpyRpcEvent] public static readonly IpyRpcEvent<int> Restarted = new("restarted");

            /// <summary>Named like its namespace.</summary>
            [IpyRpcEvent] public static readonly IpyRpcEvent<string> Feed = new("feed.feed");

            /// <summary>Named like the namespace beside it.</summary>
            [IpyRpcEvent] public static readonly IpyRpcEvent<string[]> Prices = new("feed.prices");
        }

        public static class Functions
        {
            public static IpyRpcServer? Server { get; set; }

            /// <summary>Publishes one of each event.</summary>
            [IpyRpcExport("feed.publish_all")]
            public static int PublishAll()
                => Server!.Publish(FeedEvents.Ticked, new Tick("ABC", 1.5, Side.Ask)) + Server.Publish(FeedEvents.Restarted, 3)
                    + Server.Publish(FeedEvents.Feed, "fed") + Server.Publish(FeedEvents.Prices, new[] { "ABC", "XYZ" });
        }
        """;

    private static async Task<(IpyRpcServer Server, string Schema)> FeedServerAsync(string source = Feed, int events = 4)
    {
        GeneratorHarness.Result server = GeneratorHarness.Run(source);
        Assert.Empty(server.GeneratorDiagnostics.Where(d => d.Severity >= DiagnosticSeverity.Warning));
        Assert.Empty(server.CompileDiagnostics);
        Assembly assembly = GeneratorHarness.Load(server.Output);
        var host = new IpyRpcServer();
        host.Register(assembly.GetType("Server.Feed.Functions")!).Register(assembly.GetType("Server.Feed.FeedEvents")!);
        assembly.GetType("Server.Feed.Functions")!.GetProperty("Server")!.SetValue(null, host);
        await using IpyRpcClient describing = await IpyRpcClient.ConnectInProcessAsync(host);
        Assert.Equal(events, describing.Events.Count);
        return (host, Encoding.UTF8.GetString(OpenRpcDocument.Write(describing.Functions, "Feed", "1.0.0", indented: true, describing.Events)));
    }

    [Fact]
    public async Task TheServersEventsBecomeTypedDeclarationsThatReceiveItsPayloads()
    {
        (IpyRpcServer server, string schema) = await FeedServerAsync();
        await using IpyRpcServer _ = server;
        GeneratorHarness.Result client = GeneratorHarness.RunWithSchemas([new("/project/Feed.ipyrpc.json", schema, ns: "Client.Feed")], """
            using System;
            using System.Collections.Generic;
            using System.Threading.Tasks;
            using IpyRpc;
            using Client.Feed;

            public static class Driver
            {
                public static async Task<string> Run(IpyRpcClient client)
                {
                    var heard = new List<string>();
                    var all = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                    void Heard(string what)
                    {
                        lock (heard)
                        {
                            heard.Add(what);
                            if (heard.Count == 4) all.TrySetResult();
                        }
                    }

                    // The payload types are the schema's: Tick and Side were declared from the event alone.
                    IpyRpcEvent<Tick> ticked = FeedEvents.Feed.Prices.Ticked;
                    await client.SubscribeAsync(ticked, t => Heard($"{ticked.Name} {t.Symbol} {t.Price} {t.Side}"));
                    await client.SubscribeAsync(FeedEvents.Restarted, n => Heard($"restarted {n + 1}"));
                    await client.SubscribeAsync(FeedEvents.Feed.FeedEvent, s => Heard($"feed.feed {s.ToUpperInvariant()}"));
                    await client.SubscribeAsync(FeedEvents.Feed.PricesEvent, p => Heard($"feed.prices {string.Join("+", p)}"));
                    int queued = await client.Proxy<FeedClient>().Feed.PublishAll();
                    await all.Task.WaitAsync(TimeSpan.FromSeconds(10));
                    heard.Sort(StringComparer.Ordinal);
                    return $"{queued}: {string.Join(" | ", heard)}";
                }
            }
            """);
        Assert.Empty(client.GeneratorDiagnostics);
        Assert.Empty(client.CompileDiagnostics);
        Assert.Equal(["Client_Feed_FeedClient.Events.IpyRpc.g.cs", "Client_Feed_FeedClient.IpyRpc.g.cs", "Client_Feed_FeedClient.Types.IpyRpc.g.cs", "IpyRpc.Formatters.g.cs"], client.Sources.Keys.Order());
        string events = client.Sources["Client_Feed_FeedClient.Events.IpyRpc.g.cs"];
        Assert.Contains("/// <summary>A price changed.</summary>\n/// <remarks>Sent at most ten times a second.</remarks>", events.Replace("    ", ""));
        Assert.Contains("/// <summary>A price tick.</summary>", client.Sources["Client_Feed_FeedClient.Types.IpyRpc.g.cs"]);

        await using IpyRpcClient connection = await IpyRpcClient.ConnectInProcessAsync(server);
        string result = await (Task<string>)GeneratorHarness.Load(client.Output).GetType("Driver")!.GetMethod("Run")!.Invoke(null, [connection])!;
        Assert.Equal("4: feed.feed FED | feed.prices ABC+XYZ | feed.prices.ticked ABC 1.5 Ask | restarted 4", result);
    }

    [Fact]
    public async Task AnEventPayloadThatDoesNotReadAsTheSchemasTypeIsSkippedWithItsErrorKeptAndTheOthersGoOn()
    {
        (IpyRpcServer server, string schema) = await FeedServerAsync();
        await using IpyRpcServer _ = server;
        // A schema edited by hand says 'restarted' carries a string (its fingerprint, still the server's, passes the check);
        // the server publishes an int.
        string stale = schema.Replace("\"x-ipyrpc\": \"Int32\",\n        \"x-csharp-type\": \"int\"", "\"x-ipyrpc\": \"String\",\n        \"x-csharp-type\": \"string\"");
        Assert.NotEqual(schema, stale);
        GeneratorHarness.Result client = GeneratorHarness.RunWithSchemas([new("/project/Feed.ipyrpc.json", stale, ns: "Client.Feed")], """
            using System;
            using System.Threading.Tasks;
            using IpyRpc;
            using Client.Feed;

            public static class Driver
            {
                public static async Task<string> Run(IpyRpcClient client)
                {
                    int handled = 0;
                    var ticked = new TaskCompletionSource<Tick>(TaskCreationOptions.RunContinuationsAsynchronously);
                    IpyRpcEvent<string> restarted = FeedEvents.Restarted;
                    await using IpyRpcSubscription subscription = await client.SubscribeAsync(restarted, s => handled++);
                    await client.SubscribeAsync(FeedEvents.Feed.Prices.Ticked, t => ticked.TrySetResult(t));
                    await client.Proxy<FeedClient>().Feed.PublishAll();
                    Tick tick = await ticked.Task.WaitAsync(TimeSpan.FromSeconds(10));
                    for (int i = 0; i < 400 && subscription.LastHandlerError is null; i++) await Task.Delay(25);
                    return $"{tick.Symbol} handled {handled} received {subscription.Received}: {subscription.LastHandlerError?.GetType().Name}: {subscription.LastHandlerError?.Message}";
                }
            }
            """);
        Assert.Empty(client.GeneratorDiagnostics);
        Assert.Empty(client.CompileDiagnostics);
        await using IpyRpcClient connection = await IpyRpcClient.ConnectInProcessAsync(server);
        string result = await (Task<string>)GeneratorHarness.Load(client.Output).GetType("Driver")!.GetMethod("Run")!.Invoke(null, [connection])!;
        Assert.StartsWith("ABC handled 0 received 1: ", result);
        Assert.EndsWith(": IpyRpcException: restarted: The event's payload could not be read as string: Expected a string but found an integer (0x03) (at byte 0)", result);
    }

    [Fact]
    public async Task SubscribingToAnEventTheServerChangedOrNoLongerPublishesFailsBeforeAnythingIsSent()
    {
        (IpyRpcServer old, string schema) = await FeedServerAsync();
        await old.DisposeAsync();
        Assert.Contains("\"x-ipyrpc-fingerprint\"", schema.Substring(schema.IndexOf("\"x-ipyrpc-events\"", StringComparison.Ordinal)));
        // Since the schema was written, 'restarted' carries a string and 'feed.feed' is gone; 'feed.prices.ticked' is as it was.
        string changed = Feed
            .Replace("IpyRpcEvent<int> Restarted", "IpyRpcEvent<string> Restarted").Replace("Server.Publish(FeedEvents.Restarted, 3)", "Server.Publish(FeedEvents.Restarted, \"3\")")
            .Replace("[IpyRpcEvent] public static readonly IpyRpcEvent<string> Feed = new(\"feed.feed\");", "").Replace("Server.Publish(FeedEvents.Feed, \"fed\")", "0");
        (IpyRpcServer server, string _) = await FeedServerAsync(changed, events: 3);
        await using IpyRpcServer host = server;
        GeneratorHarness.Result client = GeneratorHarness.RunWithSchemas([new("/project/Feed.ipyrpc.json", schema, ns: "Client.Feed")], """
            using System;
            using System.Threading.Tasks;
            using IpyRpc;
            using Client.Feed;

            public static class Driver
            {
                public static async Task<string> Run(IpyRpcClient client)
                {
                    string restarted, feed;
                    Task<IpyRpcSubscription> subscribing = client.SubscribeAsync(FeedEvents.Restarted, n => { });
                    try { await subscribing; restarted = "subscribed"; } catch (SchemaMismatchException e) { restarted = e.Code + ": " + e.Message; }
                    try { await foreach (string s in client.EventsAsync(FeedEvents.Feed.FeedEvent)) { } feed = "enumerated"; } catch (SchemaMismatchException e) { feed = e.Message; }
                    var ticked = new TaskCompletionSource<Tick>(TaskCreationOptions.RunContinuationsAsynchronously);
                    await client.SubscribeAsync(FeedEvents.Feed.Prices.Ticked, t => ticked.TrySetResult(t));
                    await client.Proxy<FeedClient>().Feed.PublishAll();
                    Tick tick = await ticked.Task.WaitAsync(TimeSpan.FromSeconds(10));
                    return $"{restarted}\n{feed}\n{tick.Symbol} {tick.Side}";
                }
            }
            """);
        Assert.Empty(client.GeneratorDiagnostics);
        Assert.Empty(client.CompileDiagnostics);
        await using IpyRpcClient connection = await IpyRpcClient.ConnectInProcessAsync(server);
        string[] lines = (await (Task<string>)GeneratorHarness.Load(client.Output).GetType("Driver")!.GetMethod("Run")!.Invoke(null, [connection])!).Split('\n');
        Assert.Equal(
            [
                "schema_mismatch: restarted: The event 'restarted' changed on the server since Feed.ipyrpc.json was written: the schema has its payload as `int`, the server now publishes `string`. Write the schema again from the server (ipyrpc schema URL) and rebuild.",
                "feed.feed: The server no longer publishes the event 'feed.feed' (Feed.ipyrpc.json lists it with a payload of `string`). Write the schema again from the server (ipyrpc schema URL) and rebuild.",
                "ABC Ask",
            ],
            lines);
    }

    [Fact]
    public async Task AnEventWhoseShapeIsUnknownIsAWarningAndTheRestIsGenerated()
    {
        (IpyRpcServer server, string schema) = await FeedServerAsync();
        await server.DisposeAsync();
        // The restarted event's payload loses its annotation, as in a document edited by hand.
        string edited = schema.Replace("\"x-ipyrpc\": \"Int32\",\n        \"x-csharp-type\": \"int\"", "\"x-csharp-type\": \"int\"");
        Assert.NotEqual(schema, edited);
        GeneratorHarness.Result client = GeneratorHarness.RunWithSchemas([new("/project/Feed.ipyrpc.json", edited, ns: "Client.Feed")]);
        Diagnostic warning = Assert.Single(client.GeneratorDiagnostics);
        Assert.Equal("IPYRPC0014", warning.Id);
        Assert.Equal(DiagnosticSeverity.Warning, warning.Severity);
        Assert.StartsWith("'restarted' in Feed.ipyrpc.json gets no typed event: a schema has no \"x-ipyrpc\" annotation", warning.GetMessage());
        Assert.Contains("client.SubscribeAsync(\"restarted\", ...)", warning.GetMessage());
        Assert.Empty(client.CompileDiagnostics);
        string events = client.Sources["Client_Feed_FeedClient.Events.IpyRpc.g.cs"];
        Assert.Contains(" Ticked = new(\"feed.prices.ticked\") { Schema = new(", events);
        Assert.DoesNotContain("Restarted", events);
    }

    [Theory]
    [InlineData("{\n  \"openrpc\": \"1.3.2\",\n  \"methods\": [ }", 2, 15, "it is not valid JSON: unexpected '}'")]
    [InlineData("[1, 2]", 0, 0, "it is not an OpenRPC document")]
    [InlineData("{\"openrpc\": \"1.3.2\", \"methods\": []}", 0, 0, "it has no \"x-ipyrpc-schema\" version, so it was not written by an IpyRpc server")]
    [InlineData("{\"openrpc\": \"1.3.2\", \"x-ipyrpc-schema\": 2, \"methods\": []}", 0, 40, "it is schema version 2, newer than this generator reads (1)")]
    public void AMalformedSchemaFileIsOneErrorAtItsPlaceAndNoCompilerErrors(string text, int line, int column, string message)
    {
        GeneratorHarness.Result result = Generate(text);
        Diagnostic error = Assert.Single(result.GeneratorDiagnostics);
        Assert.Equal("IPYRPC0012", error.Id);
        Assert.Equal(DiagnosticSeverity.Error, error.Severity);
        Assert.StartsWith("No client is generated from Broken.ipyrpc.json: " + message, error.GetMessage());
        Assert.Equal("/project/Broken.ipyrpc.json", error.Location.GetLineSpan().Path);
        Assert.Equal(new Microsoft.CodeAnalysis.Text.LinePosition(line, column), error.Location.GetLineSpan().StartLinePosition);
        Assert.Empty(result.Sources);
        Assert.Empty(result.Output.GetDiagnostics().Where(d => d.Severity == DiagnosticSeverity.Error));
    }

    [Fact]
    public void AMethodWhoseShapeIsUnknownIsAWarningAndTheRestIsGenerated()
    {
        // A plain OpenRPC schema (no x-ipyrpc annotation) on one parameter: how its value travels is unknown.
        string schema = RepositoryFile("samples", "SchemaClient", "Quickstart.ipyrpc.json")
            .Replace("\"x-ipyrpc\": \"String\",\n            \"x-csharp-type\": \"string\"\n          }\n        }\n      ],\n      \"result\": {\n        \"name\": \"result\",\n        \"description\": \"The same text.\"",
                "\"x-csharp-type\": \"string\"\n          }\n        }\n      ],\n      \"result\": {\n        \"name\": \"result\",\n        \"description\": \"The same text.\"");
        GeneratorHarness.Result result = GeneratorHarness.RunWithSchemas([new("/project/Quickstart.ipyrpc.json", schema)]);
        Diagnostic warning = Assert.Single(result.GeneratorDiagnostics);
        Assert.Equal("IPYRPC0013", warning.Id);
        Assert.Equal(DiagnosticSeverity.Warning, warning.Severity);
        Assert.StartsWith("'echo' in Quickstart.ipyrpc.json gets no typed method: a schema has no \"x-ipyrpc\" annotation", warning.GetMessage());
        Assert.Equal(schema.Substring(0, schema.IndexOf("\"x-csharp-type\": \"string\"", StringComparison.Ordinal)).Count(c => c == '\n') - 2, warning.Location.GetLineSpan().StartLinePosition.Line);
        Assert.Empty(result.CompileDiagnostics);
        string proxy = result.Sources["Demo_Quickstart_QuickstartClient.IpyRpc.g.cs"];
        Assert.Contains("public __Tasks.Task<int> Add(", proxy);
        Assert.DoesNotContain(" Echo(", proxy);
    }

    [Fact]
    public void EditingCodeLeavesTheSchemaClientCachedAndEditingTheSchemaRegeneratesIt()
    {
        var schema = new GeneratorHarness.SchemaFile("/project/Quickstart.ipyrpc.json", RepositoryFile("samples", "SchemaClient", "Quickstart.ipyrpc.json"));
        Microsoft.CodeAnalysis.CSharp.CSharpCompilation compilation = GeneratorHarness.Compile("namespace Demo; public static class Code { public static int X => 1; }");
        GeneratorDriver driver = GeneratorHarness.Driver([schema], "Demo").RunGenerators(compilation);

        IncrementalStepRunReason[] Reasons() => [.. driver.GetRunResult().Results.Single().TrackedSteps[IpyRpcGenerator.Steps.Schemas].SelectMany(s => s.Outputs).Select(o => o.Reason)];

        SyntaxTree old = compilation.SyntaxTrees.Single();
        driver = driver.RunGenerators(compilation.ReplaceSyntaxTree(old, Microsoft.CodeAnalysis.CSharp.CSharpSyntaxTree.ParseText("namespace Demo; public static class Code { public static int X => 2; }", GeneratorHarness.ParseOptions, old.FilePath)));
        Assert.All(Reasons(), r => Assert.Equal(IncrementalStepRunReason.Cached, r));

        var edited = new GeneratorHarness.SchemaFile(schema.Path, schema.GetText()!.ToString().Replace("Adds two integers.", "Adds two whole numbers."));
        driver = driver.ReplaceAdditionalText(schema, edited).RunGenerators(compilation);
        Assert.Equal([IncrementalStepRunReason.Modified], Reasons());
        Assert.Contains("Adds two whole numbers.", driver.GetRunResult().Results.Single().GeneratedSources.Single(s => s.HintName.StartsWith("Demo_Quickstart_QuickstartClient.IpyRpc", StringComparison.Ordinal)).SourceText.ToString());
    }
}
