namespace IpyRpc.Integration.Tests;

/// <summary>
/// The packages as a newcomer gets them: packed into a folder feed, referenced by version from a
/// brand-new project outside this repository, built with the generator from the package, and run.
/// </summary>
[Collection(SdkBuildsCollection.Name)]
public sealed class PackageTests
{
    [Fact]
    public async Task ABrandNewProjectReferencesThePackagesByVersionAndCallsAFunction()
    {
        string root = Repository.Root;
        string version = "0.0.0-test." + Guid.NewGuid().ToString("N")[..12]; // unique: never shadowed by NuGet's cache
        string work = Directory.CreateTempSubdirectory("ipyrpc-pack-").FullName;
        string feed = Path.Combine(work, "feed");
        string app = Path.Combine(work, "app");
        Directory.CreateDirectory(app);
        try
        {
            foreach (string project in new[] { "runtime/IpyRpc/IpyRpc.csproj", "runtime/IpyRpc.Http/IpyRpc.Http.csproj", "runtime/IpyRpc.ZeroMq/IpyRpc.ZeroMq.csproj", "runtime/IpyRpc.Redis/IpyRpc.Redis.csproj", "runtime/IpyRpc.Hosting/IpyRpc.Hosting.csproj", "runtime/IpyRpc.Cli/IpyRpc.Cli.csproj" })
            {
                (int code, string output) = await Repository.RunAsync("dotnet", root, "pack", Path.Combine(root, project), "--no-build", "-c", "Debug", "-o", feed, $"-p:Version={version}");
                Assert.True(code == 0, output);
            }

            Assert.Equal(6, Directory.GetFiles(feed, $"*.{version}.nupkg").Length);
            File.WriteAllText(Path.Combine(app, "nuget.config"), $"""
                <?xml version="1.0" encoding="utf-8"?>
                <configuration>
                  <packageSources>
                    <add key="ipyrpc-test-feed" value="{feed}" />
                  </packageSources>
                </configuration>
                """);
            File.WriteAllText(Path.Combine(app, "App.csproj"), $"""
                <Project Sdk="Microsoft.NET.Sdk">
                  <PropertyGroup>
                    <OutputType>Exe</OutputType>
                    <TargetFramework>net10.0</TargetFramework>
                    <Nullable>enable</Nullable>
                    <ImplicitUsings>enable</ImplicitUsings>
                    <TreatWarningsAsErrors>true</TreatWarningsAsErrors>
                  </PropertyGroup>
                  <ItemGroup>
                    <PackageReference Include="IpyRpc.Http" Version="{version}" />
                    <AdditionalFiles Include="Quickstart.ipyrpc.json" IpyRpcNamespace="App.Remote" />
                  </ItemGroup>
                </Project>
                """);
            // A schema file with item metadata: the package's build props make both visible to the generator.
            File.Copy(Path.Combine(root, "samples", "SchemaClient", "Quickstart.ipyrpc.json"), Path.Combine(app, "Quickstart.ipyrpc.json"));
            File.WriteAllText(Path.Combine(app, "Program.cs"), """
                using IpyRpc;
                using IpyRpc.Http;

                await using var server = new IpyRpcServer();
                server.Register(typeof(Calc));
                await using var host = await IpyRpcHttpServer.StartAsync(server);
                await using var client = await IpyRpcHttpClient.ConnectAsync(host.Address);
                Console.WriteLine("sum " + await client.Proxy<CalcClient>().Math.Add(2, 3));
                Console.WriteLine(client.Describe("math.add").Summary);
                try
                {
                    await client.Proxy<App.Remote.QuickstartClient>().Echo("x");
                }
                catch (SchemaMismatchException e)
                {
                    Console.WriteLine("schema client: " + e.Code);
                }

                public static class Calc
                {
                    /// <summary>Adds two integers, from a package.</summary>
                    /// <param name="a">The first.</param>
                    /// <param name="b">The second.</param>
                    [IpyRpcExport("math.add")] public static int Add(int a, int b) => a + b;
                }
                """);

            (int runCode, string runOutput) = await Repository.RunAsync("dotnet", app, "run");
            Assert.True(runCode == 0, runOutput);
            Assert.Contains("sum 5", runOutput); // the generator came with the package: the typed proxy exists
            Assert.Contains("Adds two integers, from a package.", runOutput);
            Assert.Contains("schema client: schema_mismatch", runOutput); // generated from the schema file, in the namespace its metadata gave

            // The command-line tool installs from the same feed and runs.
            string tools = Path.Combine(work, "tools");
            (int installCode, string installOutput) = await Repository.RunAsync("dotnet", work, "tool", "install", "IpyRpc.Cli", "--version", version, "--add-source", feed, "--tool-path", tools);
            Assert.True(installCode == 0, installOutput);
            (int toolCode, string toolOutput) = await Repository.RunAsync(Path.Combine(tools, "ipyrpc"), work, "--help");
            Assert.True(toolCode == 0, toolOutput);
            Assert.Contains("call <url> <name>", toolOutput);
        }
        finally
        {
            Directory.Delete(work, recursive: true);
            string cache = Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".nuget", "packages");
            foreach (string id in new[] { "ipyrpc", "ipyrpc.http", "ipyrpc.zeromq", "ipyrpc.redis", "ipyrpc.hosting", "ipyrpc.cli" })
            {
                string cached = Path.Combine(cache, id, version);
                if (Directory.Exists(cached)) Directory.Delete(cached, recursive: true);
            }
        }
    }
}
