namespace IpyRpc.Generators.Tests;

/// <summary>Inline sources the tests compile.</summary>
internal static class Sources
{
    public const string Compute = """
        using System.Collections.Generic;
        using System.Threading;
        using System.Threading.Tasks;
        using IpyRpc;

        namespace Demo;

        /// <summary>What to crunch.</summary>
        public sealed record Request(string Name, int[] Values, Dictionary<string, double> Weights);

        /// <summary>What crunching found.</summary>
        public sealed record Report(string Name, double Total, List<string> Notes);

        public static class Compute
        {
            /// <summary>Adds two integers.</summary>
            /// <param name="a">The first addend.</param>
            /// <param name="b">The second addend.</param>
            /// <returns>The sum.</returns>
            [IpyRpcExport("add")]
            public static int Add(int a, int b) => a + b;

            /// <summary>Prints progress while it works.</summary>
            /// <remarks>Takes a while for large inputs.</remarks>
            /// <param name="req">The request.</param>
            /// <param name="ct">Stops the work.</param>
            /// <returns>A report on <paramref name="req"/>.</returns>
            /// <exception cref="System.ArgumentException">When the request is empty.</exception>
            [IpyRpcExport]
            public static async Task<Report> Crunch(Request req, CancellationToken ct)
            {
                System.Console.WriteLine("step 1");
                await Task.Yield();
                double total = 0;
                foreach (int v in req.Values) total += v * (req.Weights.TryGetValue(req.Name, out double w) ? w : 1);
                return new Report(req.Name, total, new List<string> { "done" });
            }

            /// <summary>Echoes JSON text.</summary>
            [IpyRpcExport("compute_json")]
            public static string ComputeJson(string text) => text;

            /// <summary>Scales with an optional factor.</summary>
            [IpyRpcExport("math.scale")]
            public static double Scale(double value, double factor = 2.5, string? label = null) => value * factor;
        }
        """;

    public const string Config = """
        using IpyRpc;

        namespace Demo;

        public static class Setup
        {
            public static void Configure(IpyRpcServer server) => server.Config(new()
            {
                ["*_json"] = new() { InputSerialization = Serialization.Json },
                ["add"] = new() { Timeout = System.TimeSpan.FromSeconds(1) },
                ["math.*"] = new(),
                ["*_jsno"] = new(),
            });
        }
        """;

    public const string Streams = """
        using System;
        using System.Collections.Generic;
        using System.Runtime.CompilerServices;
        using System.Threading;
        using System.Threading.Tasks;
        using IpyRpc;

        namespace Demo;

        /// <summary>A reading.</summary>
        public sealed record Reading(string Sensor, double Value);

        public static class Lab
        {
            /// <summary>Readings as the sensor produces them.</summary>
            /// <param name="count">How many.</param>
            /// <param name="cancellationToken">Stops the sensor.</param>
            [IpyRpcExport("lab.sensors.read")]
            public static async IAsyncEnumerable<Reading> Read(int count, [EnumeratorCancellation] CancellationToken cancellationToken)
            {
                for (int i = 0; i < count; i++)
                {
                    await Task.Yield();
                    yield return new Reading("s1", i);
                }
            }

            /// <summary>Solves a linear system, reporting how far it got.</summary>
            /// <param name="size">The system's size.</param>
            /// <param name="progress">The fraction done.</param>
            [IpyRpcExport("lab.math.linear.solve")]
            public static double Solve(int size, IProgress<double> progress)
            {
                progress.Report(0.5);
                return size;
            }

            /// <summary>Pings.</summary>
            [IpyRpcExport("ping")]
            public static string Ping() => "pong";
        }

        public static class LabEvents
        {
            /// <summary>A new reading was taken.</summary>
            /// <remarks>Published for every sensor.</remarks>
            [IpyRpcEvent] public static readonly IpyRpcEvent<Reading> Taken = new("lab.reading_taken");
        }
        """;

    /// <summary>A contracts library: an [IpyRpcContract] interface, a record and an enum, and no implementation.</summary>
    public const string Contract = """
        using System.Collections.Generic;
        using System.Threading;
        using System.Threading.Tasks;
        using IpyRpc;
        namespace Calc.Contracts;

        /// <summary>Arithmetic and statistics.</summary>
        [IpyRpcContract]
        public interface ICalculator
        {
            /// <summary>Adds two integers.</summary>
            /// <param name="a">The first addend.</param>
            /// <param name="b">The second addend.</param>
            /// <returns>The sum.</returns>
            [IpyRpcExport("calc.add")]
            int Add(int a, int b);

            /// <summary>Summarizes a series.</summary>
            /// <param name="values">The values.</param>
            /// <param name="rounding">How the mean is rounded.</param>
            /// <param name="cancellationToken">The call's token (filled by the call).</param>
            /// <returns>The summary.</returns>
            /// <exception cref="System.ArgumentException">The series is empty.</exception>
            [IpyRpcExport("calc.summarize")]
            Task<Summary> SummarizeAsync(double[] values, Rounding rounding = Rounding.Nearest, CancellationToken cancellationToken = default);

            /// <summary>Counts up to <paramref name="to"/>.</summary>
            /// <param name="to">The last number.</param>
            /// <returns>The numbers.</returns>
            IAsyncEnumerable<int> Count(int to);
        }

        /// <summary>A summary.</summary>
        /// <param name="Count">How many.</param>
        /// <param name="Mean">Their mean.</param>
        public sealed record Summary(int Count, double Mean);

        /// <summary>How a mean is rounded.</summary>
        public enum Rounding { None, Nearest, Down }
        """;
}
