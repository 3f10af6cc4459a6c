using System.Collections.Generic;
using System.Linq;
using System.Text;
using IpyRpc.Generators.Model;

namespace IpyRpc.Generators.Emit;

/// <summary>
/// Emits, for one type with exported methods: the dispatch class (descriptors, invokers and a
/// module initializer that registers them) and the typed client proxy with the methods' docs.
/// </summary>
internal static class ServiceEmitter
{
    public static string Emit(ServiceModel service)
    {
        ServiceKey key = service.Key;
        var w = new CodeWriter();
        w.Line(CodeWriter.Header);
        bool hasNamespace = key.Namespace.Length > 0;
        if (hasNamespace) w.Open("namespace " + key.Namespace);

        // A client generated from a schema file has no implementation here to dispatch to: the proxy only.
        if (key.SchemaFile is null) EmitDispatch(w, service);
        if (service.Functions.Count > 0 || key.SchemaFile is not null)
        {
            if (key.SchemaFile is null) w.Line();
            EmitProxy(w, service);
        }

        if (hasNamespace) w.Close();
        return w.ToString();
    }

    public static string DispatchName(ServiceKey key) => key.ContainingPath + "_IpyRpcDispatch";

    /// <summary>The proxy's class name: <c>Compute</c> gets <c>ComputeClient</c>, a contract <c>ICalculator</c> gets <c>CalculatorClient</c>.</summary>
    public static string ProxyName(ServiceKey key)
        => key.SchemaFile is not null ? key.Name : (key.IsContract && key.Name.Length > 1 && key.Name[0] == 'I' && char.IsUpper(key.Name[1]) ? key.Name.Substring(1) : key.Name) + "Client";

    private static void EmitDispatch(CodeWriter w, ServiceModel service)
    {
        ServiceKey key = service.Key;
        bool instance = service.Functions.Any(f => !f.IsStatic);
        string factory = instance && key.HasParameterlessConstructor ? $"static () => new {key.FullName}()" : "null";
        string events = string.Join("\n", service.Events.Select(e =>
            $"new() {{ Name = {Names.Literal(e.EventName)}, PayloadType = {Names.Literal(e.PayloadDisplay)}, PayloadSchema = {JsonSchema.Reference(JsonSchema.Of(e.Payload, e.Objects), service.AssemblyKey)}, Summary = {Names.Literal(e.Summary)}, Remarks = {Names.Literal(e.Remarks)} }},"));
        string functions = string.Join("\n", service.Functions.Select(f =>
            $"new {Names.Runtime}.IpyRpcFunction({Member(f)}_Descriptor, Invoke_{Member(f)}, isSynchronous: {(f.ReturnKind is ReturnKind.Void or ReturnKind.Value ? "true" : "false")}, target: {(f.IsStatic ? "null" : "target")}),"));
        string registers = key.IsContract
            ? "Makes these functions known to servers that register an implementation of the contract (<c>server.Register(new Implementation())</c>)."
            : "Makes these functions known to <c>server.Register(typeof(...))</c>.";
        w.Block($$"""
            /// <summary>IpyRpc dispatch for the exported methods of <see cref="{{key.FullName}}"/>: descriptors and reflection-free invokers.</summary>
            {{CodeWriter.GeneratedCode}}
            [global::System.ComponentModel.EditorBrowsable(global::System.ComponentModel.EditorBrowsableState.Never)]
            internal static class {{DispatchName(key)}}
            {
            """).Push();
        w.Block($$"""
            /// <summary>{{registers}}</summary>
            [global::System.Runtime.CompilerServices.ModuleInitializer]
            internal static void Register()
            {
                {{Names.Runtime}}.GeneratedServices.Add(new {{Names.Runtime}}.GeneratedService(typeof({{key.FullName}}), {{(instance ? "true" : "false")}}, {{factory}}, CreateFunctions{{(service.Events.Count > 0 ? ", Events" : "")}}));
            }

            """);
        if (service.Events.Count > 0)
        {
            w.Block($$"""
                /// <summary>The events this type declares, with their docs.</summary>
                public static readonly global::System.Collections.Generic.IReadOnlyList<{{Names.Runtime}}.EventDescriptor> Events = new {{Names.Runtime}}.EventDescriptor[]
                {
                {{CodeWriter.Indent(events, 4)}}
                };

                """);
        }

        w.Block($$"""
            /// <summary>The functions, bound to <paramref name="target"/> for instance methods.</summary>
            public static global::System.Collections.Generic.IReadOnlyList<{{Names.Runtime}}.IpyRpcFunction> CreateFunctions(object? target)
            {
                return new {{Names.Runtime}}.IpyRpcFunction[]
                {
            {{CodeWriter.Indent(functions, 8)}}
                };
            }
            """);
        foreach (FunctionModel f in service.Functions)
        {
            w.Line();
            EmitDescriptor(w, f, service.AssemblyKey);
            w.Line();
            EmitInvoker(w, f, service);
        }

        w.Close();
    }

    /// <summary>A member-name-safe form of the export name (two methods may share a C# name as overloads).</summary>
    private static string Member(FunctionModel f)
    {
        var text = new StringBuilder();
        foreach (char c in f.ExportName) text.Append(char.IsLetterOrDigit(c) ? c : '_');
        return text.ToString();
    }

    private static void EmitDescriptor(CodeWriter w, FunctionModel f, string assemblyKey)
    {
        string? returnSchema = JsonSchema.ReturnOf(f);
        ParameterModel? progress = f.Parameters.FirstOrDefault(p => p.IsProgress);
        string parameters = string.Join("\n", f.Parameters.Where(p => p.IsArgument).Select(p =>
            $"new() {{ Name = {Names.Literal(p.Name)}, Type = {Names.Literal(p.Display)}, Schema = {JsonSchema.Reference(JsonSchema.Of(p.Type!, f.Objects), assemblyKey)}, Doc = {Names.Literal(p.Doc)}, IsOptional = {(p.DefaultExpression is null ? "false" : "true")}, DefaultValue = {Names.Literal(p.DefaultDisplay ?? p.DefaultExpression)} }},"));
        string exceptions = string.Join("\n", f.Docs.Exceptions.Select(e => $"new({Names.Literal(e.Name)}, {Names.Literal(e.Text)}),"));
        w.Block($$"""
            /// <summary>The descriptor of <c>{{f.ExportName}}</c>.</summary>
            public static readonly {{Names.Runtime}}.FunctionDescriptor {{Member(f)}}_Descriptor = new()
            {
                Name = {{Names.Literal(f.ExportName)}},
                Summary = {{Names.Literal(f.Docs.Summary)}},
                Remarks = {{Names.Literal(f.Docs.Remarks)}},
                Returns = {{Names.Literal(f.Docs.Returns)}},
                ReturnType = {{Names.Literal(f.ReturnDisplay)}},
                ReturnSchema = {{(returnSchema is null ? "null" : JsonSchema.Reference(returnSchema, assemblyKey))}},
                {{CodeWriter.If(f.ReturnKind == ReturnKind.Stream, "IsStream = true,")}}
                Fingerprint = {{Names.Literal(Fingerprint.Of(f))}},
                {{CodeWriter.If(progress is not null, $"ProgressType = {Names.Literal(progress?.Type!.Display)},")}}
                {{CodeWriter.If(progress is not null, $"ProgressSchema = {(progress is null ? "" : JsonSchema.Reference(JsonSchema.Of(progress.Type!, f.Objects), assemblyKey))},")}}
                Parameters = new {{Names.Runtime}}.ParameterDescriptor[]
                {
            {{CodeWriter.Indent(parameters, 8)}}
                },
                Exceptions = new {{Names.Runtime}}.ExceptionDoc[]
                {
            {{CodeWriter.Indent(exceptions, 8)}}
                },
            };
            """);
    }

    private static void EmitInvoker(CodeWriter w, FunctionModel f, ServiceModel service)
    {
        bool isAsync = f.ReturnKind is ReturnKind.Task or ReturnKind.TaskOfT or ReturnKind.ValueTask or ReturnKind.ValueTaskOfT or ReturnKind.Stream;
        var reads = new List<string>();
        var arguments = new List<string>();
        int index = 0;
        foreach (ParameterModel p in f.Parameters)
        {
            if (p.IsProgress)
            {
                arguments.Add($"call.Progress({Names.Formatter(p.Type!, service.AssemblyKey)})");
            }
            else if (p.FilledBy is { } filledBy)
            {
                arguments.Add(filledBy);
            }
            else
            {
                string formatter = Names.Formatter(p.Type!, service.AssemblyKey);
                reads.Add(p.DefaultExpression is null
                    ? $"{p.Source} arg_{p.Name} = call.Arg({index}, {formatter});"
                    : $"{p.Source} arg_{p.Name} = call.ArgOrDefault({index}, {formatter}, {p.DefaultExpression});");
                arguments.Add("arg_" + p.Name);
                index++;
            }
        }

        // An interface with static abstract members cannot be a type argument: cast instead.
        string receiver = f.IsStatic ? service.Key.FullName
            : service.Key.HasStaticAbstractMembers ? $"(({service.Key.FullName})call.Target<object>())"
            : $"call.Target<{service.Key.FullName}>()";
        string invocation = $"{receiver}.{f.MethodName}({string.Join(", ", arguments)})";
        string? result = f.ReturnType is null ? null : Names.Formatter(f.ReturnType, service.AssemblyKey);
        string body = f.ReturnKind switch
        {
            ReturnKind.Void => $"""
                {invocation};
                call.ReturnVoid();
                return default;
                """,
            ReturnKind.Value => $"""
                call.Return({invocation}, {result});
                return default;
                """,
            ReturnKind.Task or ReturnKind.ValueTask => $"""
                await {invocation}.ConfigureAwait(false);
                call.ReturnVoid();
                """,
            ReturnKind.Stream => $"await call.ReturnStreamAsync({invocation}, {result}).ConfigureAwait(false);",
            _ => $"call.Return(await {invocation}.ConfigureAwait(false), {result});",
        };
        w.Block($$"""
            private static {{(isAsync ? "async " : "")}}{{Names.Tasks}}.ValueTask Invoke_{{Member(f)}}({{Names.Runtime}}.IpyRpcInvocation call)
            {
            {{CodeWriter.Indent(string.Join("\n", reads), 4)}}
            {{CodeWriter.Indent(body, 4)}}
            }
            """);
    }

    private static void EmitProxy(CodeWriter w, ServiceModel service)
    {
        ServiceKey key = service.Key;
        string name = ProxyName(key);
        string summary = key.SchemaFile is not null
            ? $"Typed client for the server described by <c>{Xml(key.SchemaFile)}</c> (generated from that file, with no reference to the server's code). Create it with <c>client.Proxy&lt;{name}&gt;()</c>. A call to a function whose signature changed since the file was written throws <see cref=\"{Names.Runtime}.SchemaMismatchException\"/> before anything is sent."
            : key.IsContract
            ? $"Typed client for the contract <see cref=\"{key.FullName}\"/>: calls whichever server implements it. Create it with <c>client.Proxy&lt;{name}&gt;()</c>."
            : $"Typed client for the IpyRpc functions of <see cref=\"{key.FullName}\"/>. Create it with <c>client.Proxy&lt;{name}&gt;()</c>.";
        w.Block($$"""
            /// <summary>{{summary}}</summary>
            {{CodeWriter.GeneratedCode}}
            {{(key.IsPublic ? "public" : "internal")}} sealed partial class {{name}} : {{Names.Runtime}}.IIpyRpcProxy<{{name}}>
            {
                private readonly {{Names.Runtime}}.IpyRpcPeer _client;

                /// <summary>Creates the proxy over a peer: a client (calls its server), or a server's connection (calls that client back).</summary>
                /// <param name="peer">The connection calls go through.</param>
                public {{name}}({{Names.Runtime}}.IpyRpcPeer peer) => _client = peer;

                /// <summary>Creates the proxy over a peer: a client (calls its server), or a server's connection (calls that client back).</summary>
                /// <param name="peer">The connection calls go through.</param>
                /// <returns>The proxy.</returns>
                public static {{name}} Create({{Names.Runtime}}.IpyRpcPeer peer) => new(peer);

                /// <summary>The peer this proxy calls through.</summary>
                public {{Names.Runtime}}.IpyRpcPeer Peer => _client;
            """).Push();
        EmitLevel(w, Tree(service.Functions), service.AssemblyKey, key.IsPublic);
        w.Close();
    }

    /// <summary>The functions by dotted namespace: <c>math.linear.solve</c> is <c>Solve</c> under <c>Math.Linear</c>.</summary>
    private sealed class Level
    {
        public string Path = "";
        public readonly List<FunctionModel> Functions = [];
        public readonly SortedDictionary<string, Level> Children = new(System.StringComparer.Ordinal);
    }

    private static Level Tree(IEnumerable<FunctionModel> functions)
    {
        var root = new Level();
        foreach (FunctionModel f in functions)
        {
            string[] segments = f.ExportName.Split('.');
            Level at = root;
            for (int i = 0; i < segments.Length - 1; i++)
            {
                if (!at.Children.TryGetValue(segments[i], out Level? next))
                {
                    next = new Level { Path = at.Path.Length == 0 ? segments[i] : at.Path + "." + segments[i] };
                    at.Children[segments[i]] = next;
                }

                at = next;
            }

            at.Functions.Add(f);
        }

        return root;
    }

    /// <summary>A namespace segment as a C# member name: <c>linear_algebra</c> → <c>LinearAlgebra</c>.</summary>
    internal static string Pascal(string segment)
    {
        var text = new StringBuilder();
        bool upper = true;
        foreach (char c in segment)
        {
            if (!char.IsLetterOrDigit(c))
            {
                upper = true;
                continue;
            }

            text.Append(upper ? char.ToUpperInvariant(c) : c);
            upper = false;
        }

        if (text.Length == 0 || char.IsDigit(text[0])) text.Insert(0, '_');
        return text.ToString();
    }

    // One level's members: its namespaces as properties (nested proxies, created once), its functions as methods.
    private static void EmitLevel(CodeWriter w, Level level, string assemblyKey, bool isPublic)
    {
        // Two functions with one C# name (overloads, or methods of the same name exported twice) get
        // the last segment of their exported names instead, so the proxy never declares a member twice.
        var methodNames = new Dictionary<FunctionModel, string>();
        var reserved = new HashSet<string>(System.StringComparer.Ordinal) { "Peer", "Create", "_client" };
        foreach (IGrouping<string, FunctionModel> group in level.Functions.GroupBy(f => f.MethodName))
        {
            foreach (FunctionModel f in group)
            {
                string name = group.Count() == 1 && !reserved.Contains(f.MethodName) ? f.MethodName : Pascal(f.ExportName.Substring(f.ExportName.LastIndexOf('.') + 1)) + "Remote";
                string unique = name;
                for (int n = 2; methodNames.ContainsValue(unique) || reserved.Contains(unique); n++) unique = name + n;
                methodNames[f] = unique;
            }
        }

        // Variants are named on the method's name without "Async" (SubmitSummarizeAsync), unless two methods would then share one.
        var stems = new Dictionary<FunctionModel, string>();
        foreach (IGrouping<string, KeyValuePair<FunctionModel, string>> group in methodNames.GroupBy(p => Stem(p.Value)))
        {
            foreach (KeyValuePair<FunctionModel, string> p in group) stems[p.Key] = group.Count() == 1 ? group.Key : p.Value;
        }

        var taken = new HashSet<string>(methodNames.Values, System.StringComparer.Ordinal);
        var nested = new List<(Level Child, string Property, string Class)>();
        foreach (KeyValuePair<string, Level> child in level.Children)
        {
            string property = Pascal(child.Key);
            if (taken.Contains(property) || property is "Peer" or "Create") property += "Functions";
            taken.Add(property);
            nested.Add((child.Value, property, property + "Namespace"));
        }

        foreach ((Level child, string property, string cls) in nested)
        {
            w.Block($$"""

                private {{cls}}? _{{property}};

                /// <summary>The remote functions under <c>{{child.Path}}</c>: {{Listing(child)}}.</summary>
                public {{cls}} {{property}} => _{{property}} ??= new {{cls}}(_client);
                """);
        }

        foreach (FunctionModel f in level.Functions)
        {
            w.Line();
            EmitProxyMethod(w, f, assemblyKey, methodNames[f], stems[f]);
        }

        foreach ((Level child, string property, string cls) in nested)
        {
            w.Block($$"""

                /// <summary>The remote functions under <c>{{child.Path}}</c>: {{Listing(child)}}.</summary>
                {{CodeWriter.GeneratedCode}}
                {{(isPublic ? "public" : "internal")}} sealed partial class {{cls}}
                {
                    private readonly {{Names.Runtime}}.IpyRpcPeer _client;

                    internal {{cls}}({{Names.Runtime}}.IpyRpcPeer peer) => _client = peer;
                """).Push();
            EmitLevel(w, child, assemblyKey, isPublic);
            w.Close();
        }
    }

    /// <summary>A method name without its <c>Async</c> suffix, to build the names of its variants on (<c>SubmitSummarizeAsync</c>, not <c>SubmitSummarizeAsyncAsync</c>).</summary>
    private static string Stem(string methodName)
        => methodName.Length > 5 && methodName.EndsWith("Async", System.StringComparison.Ordinal) ? methodName.Substring(0, methodName.Length - 5) : methodName;

    private static string Xml(string text) => System.Security.SecurityElement.Escape(text).Replace("\n", " ");

    private static string Listing(Level level)
        => string.Join(", ", level.Functions.Select(f => $"<c>{f.ExportName.Substring(f.ExportName.LastIndexOf('.') + 1)}</c>")
            .Concat(level.Children.Keys.Select(k => $"<c>{k}.*</c>")));

    /// <summary>The first candidate no parameter uses, else the last with a number.</summary>
    private static string FreeName(HashSet<string> taken, params string[] candidates)
    {
        foreach (string c in candidates)
        {
            if (!taken.Contains(c)) return c;
        }

        int n = 2;
        string last = candidates[candidates.Length - 1];
        while (taken.Contains(last + n)) n++;
        return last + n;
    }

    // Values worth leaving where they are: arrays, collections, data frames, tensors, user types (not numbers, text, dates, enums).
    private static bool IsData(TypeModel? type) => type is not null && type.Kind switch
    {
        TypeKind.Builtin => type.Builtin is { } b && (b.EndsWith("Array", System.StringComparison.Ordinal) || b.EndsWith("Array2D", System.StringComparison.Ordinal)
            || b.EndsWith("Array3D", System.StringComparison.Ordinal) || b.EndsWith("Tensor", System.StringComparison.Ordinal) || b == "DataFrame"),
        TypeKind.Sequence or TypeKind.Dictionary or TypeKind.Object => true,
        _ => false,
    };

    // {Name}AsPointerAsync: the result stays with the process that computed it (for data results: a number or a text is cheaper to send than to point to).
    /// <summary>The peer a proxy method calls through: for a client generated from a schema file, after checking that the function still has the schema's signature.</summary>
    private static string Receiver(FunctionModel f)
        => f.Check is null ? "_client"
            : $"{Names.Runtime}.SchemaGuard.Checked(_client, {Names.Literal(f.ExportName)}, {Names.Literal(f.Check.Fingerprint)}, {Names.Literal(f.Check.Signature)}, {Names.Literal(f.Check.File)})";

    private static void EmitAsPointerMethod(CodeWriter w, FunctionModel f, string stem, ParameterModel[] parameters,
        List<string> signature, string args, string options, string token, HashSet<string> tokenParams, ParameterModel? progress)
    {
        string pointerType = $"{Names.Runtime}.RemotePointer<{f.ReturnSource}>";
        string docs = CallDocs(f, parameters, tokenParams, progress, options, token,
            $"Calls <c>{f.ExportName}</c> for a pointer to its result: the value stays with the process that computed it, to be fetched (whole or by rows) from there or passed to another call.",
            "timeout, how long the holder keeps the value (PointerTimeToLive), where remote output goes, serialization",
            $"A pointer to the result of <c>{f.ExportName}</c>.");
        w.Block($$"""

            {{docs}}
            public {{Names.Tasks}}.Task<{{pointerType}}> {{stem}}AsPointerAsync({{string.Join(", ", signature)}})
                => {{Receiver(f)}}.InvokeAsync<{{pointerType}}>({{Names.Literal(f.ExportName)}}, {{args}}, {{Names.Runtime}}.RemotePointerFormatter<{{f.ReturnSource}}>.Instance, {{Names.Runtime}}.CallOptions.ForPointer({{options}}), {{token}});
            """);
    }

    // An overload of {Name} taking pointers for its data arguments, resolved where the function runs.
    private static void EmitPointerArgumentsOverload(CodeWriter w, FunctionModel f, string assemblyKey, string methodName, string stem, ParameterModel[] parameters,
        string options, string token, HashSet<string> tokenParams, ParameterModel? progress)
    {
        var pointerSignature = new List<string>();
        var pointerArgs = new StringBuilder($"new {Names.Runtime}.IpyRpcArguments()");
        foreach (ParameterModel p in parameters)
        {
            if (IsData(p.Type))
            {
                string element = p.Source.EndsWith("?", System.StringComparison.Ordinal) && !p.Type!.IsValueType ? p.Source.Substring(0, p.Source.Length - 1) : p.Source;
                pointerSignature.Add($"{Names.Runtime}.RemotePointer<{element}> @{p.Name}");
                pointerArgs.Append($".Add(@{p.Name}, {Names.Runtime}.RemotePointerFormatter<{element}>.Instance)");
            }
            else
            {
                pointerSignature.Add(p.DefaultExpression is null ? $"{p.Source} @{p.Name}" : $"{p.Source} @{p.Name} = {p.DefaultExpression}");
                pointerArgs.Append($".Add(@{p.Name}, {Names.Formatter(p.Type!, assemblyKey)})");
            }
        }

        pointerSignature.Add($"{Names.Runtime}.CallOptions? {options} = null");
        pointerSignature.Add($"{Names.CancellationToken} {token} = default");
        string docs = CallDocs(f, parameters, tokenParams, progress, options, token,
            $"Calls <c>{f.ExportName}</c> with pointers for its data arguments: each is resolved where the function runs (on the holder itself without a byte moving), never passing through this caller.",
            "timeout, where remote output goes, serialization",
            $"The result of <c>{f.ExportName}</c>.");
        w.Block($$"""

            {{docs}}
            public {{Names.Tasks}}.Task<{{f.ReturnSource}}> {{methodName}}({{string.Join(", ", pointerSignature)}})
                => {{Receiver(f)}}.InvokeAsync<{{f.ReturnSource}}>({{Names.Literal(f.ExportName)}}, {{pointerArgs}}, {{Names.Formatter(f.ReturnType!, assemblyKey)}}, {{options}}, {{token}});
            """);

        // Pointers in, a pointer out: a chain (compute, slice, reduce) that never brings the data to the caller.
        if (IsData(f.ReturnType)) EmitAsPointerMethod(w, f, stem, parameters, pointerSignature, pointerArgs.ToString(), options, token, tokenParams, progress);
    }

    // The docs of a variant (a pointer, a pointer-argument overload): its own summary, the function's parameters, options, token, returns.
    private static string CallDocs(FunctionModel f, ParameterModel[] parameters, HashSet<string> tokenParams, ParameterModel? progress,
        string options, string token, string summary, string optionsDoc, string returns)
        => $$"""
            /// <summary>{{summary}}</summary>
            {{ParamDocs(f, parameters, tokenParams, progress)}}
            /// <param name="{{options}}">Per-call options: {{optionsDoc}}.</param>
            /// <param name="{{token}}">Cancels the call; the remote function's token is cancelled too.</param>
            /// <returns>{{returns}}</returns>
            """;

    // The function's documented parameters as written, then a line for each undocumented one (never the call-filled token or progress).
    private static string ParamDocs(FunctionModel f, ParameterModel[] parameters, HashSet<string> tokenParams, ParameterModel? progress)
    {
        IEnumerable<string> documented = f.Docs.RawElements
            .Where(e => e.Name.StartsWith("param:", System.StringComparison.Ordinal) && !tokenParams.Contains(e.Name) && e.Name != "param:" + progress?.Name)
            .SelectMany(e => e.Text.Split('\n').Select(line => "/// " + line));
        IEnumerable<string> undocumented = parameters.Where(p => !f.Docs.RawElements.Any(e => e.Name == "param:" + p.Name))
            .Select(p => $"/// <param name=\"{p.Name}\">The <c>{p.Name}</c> argument.</param>");
        string lines = string.Join("\n", documented.Concat(undocumented));
        return lines.Length == 0 ? CodeWriter.Omit : lines;
    }

    private static void EmitProxyMethod(CodeWriter w, FunctionModel f, string assemblyKey, string methodName, string stem)
    {
        ParameterModel[] parameters = f.Parameters.Where(p => p.IsArgument).ToArray();
        ParameterModel? progress = f.Parameters.FirstOrDefault(p => p.IsProgress);
        HashSet<string> names = new(f.Parameters.Where(p => p.IsArgument || p.IsProgress).Select(p => p.Name));
        string options = FreeName(names, "options", "callOptions");
        names.Add(options);
        string token = FreeName(names, "cancellationToken", "callCancellationToken");
        HashSet<string> tokenParams = new(f.Parameters.Where(p => !p.IsArgument && !p.IsProgress).Select(p => "param:" + p.Name));
        bool stream = f.ReturnKind == ReturnKind.Stream;

        // The function's own docs as written; what it throws reaches the caller as a RemoteException naming the type.
        string[] written = [.. f.Docs.RawElements.Where(e => !tokenParams.Contains(e.Name) && e.Name != "exception").SelectMany(e => e.Text.Split('\n').Select(line => "/// " + line))];
        string thrown = string.Join("\n", f.Docs.Exceptions.Select(e =>
            $"/// <exception cref=\"{Names.Runtime}.RemoteException\">The remote function threw <c>{Xml(e.Name)}</c> (the exception's <c>RemoteType</c>): {Xml(e.Text)}</exception>"));
        string undocumented = string.Join("\n", parameters.Where(p => !f.Docs.RawElements.Any(e => e.Name == "param:" + p.Name))
            .Select(p => $"/// <param name=\"{p.Name}\">The <c>{p.Name}</c> argument.</param>"));
        bool progressUndocumented = progress is not null && !f.Docs.RawElements.Any(e => e.Name == "param:" + progress.Name);
        bool returnsUndocumented = !f.Docs.RawElements.Any(e => e.Name == "returns") && f.ReturnType is not null;
        string docs = $$"""
            {{(written.Length == 0 ? CodeWriter.Omit : string.Join("\n", written))}}
            {{(thrown.Length == 0 ? CodeWriter.Omit : thrown)}}
            {{CodeWriter.If(written.Length == 0, $"/// <summary>Calls the remote function <c>{f.ExportName}</c>.</summary>")}}
            {{(undocumented.Length == 0 ? CodeWriter.Omit : undocumented)}}
            {{CodeWriter.If(progressUndocumented, $"/// <param name=\"{progress?.Name}\">Receives the function's progress reports as they happen, before the call returns.</param>")}}
            /// <param name="{{options}}">Per-call options: timeout, where remote output goes, serialization{{(stream ? ", how many items may arrive ahead of the enumeration (StreamWindow)" : "")}}.</param>
            /// <param name="{{token}}">{{(stream ? "Cancels the call; stopping the enumeration early cancels it too." : "Cancels the call; the remote function's token is cancelled too.")}}</param>
            {{CodeWriter.If(returnsUndocumented, stream
                ? $"/// <returns>The items of <c>{f.ExportName}</c>, as the remote function produces them.</returns>"
                : $"/// <returns>The result of <c>{f.ExportName}</c>.</returns>")}}
            """;

        var signature = new List<string>();
        foreach (ParameterModel p in parameters)
        {
            signature.Add(p.DefaultExpression is null ? $"{p.Source} @{p.Name}" : $"{p.Source} @{p.Name} = {p.DefaultExpression}");
        }

        if (progress is not null) signature.Add($"{progress.Source.TrimEnd('?')}? @{progress.Name} = null");
        signature.Add($"{Names.Runtime}.CallOptions? {options} = null");
        signature.Add($"{Names.CancellationToken} {token} = default");

        var args = new StringBuilder($"new {Names.Runtime}.IpyRpcArguments()");
        foreach (ParameterModel p in parameters)
        {
            args.Append($".Add(@{p.Name}, {Names.Formatter(p.Type!, assemblyKey)})");
        }

        // A submitted job reports to no one in particular: its variant takes no IProgress (attach to follow it).
        string submitArgs = args.ToString();
        List<string> submitSignature = signature.Where(p => progress is null || !p.EndsWith("@" + progress.Name + " = null", System.StringComparison.Ordinal)).ToList();
        if (progress is not null) args.Append($".Progress(@{progress.Name}, {Names.Formatter(progress.Type!, assemblyKey)})");

        if (stream)
        {
            // Streams are enumerated as they come; a submitted stream would have no one to flow to.
            w.Block($$"""
                {{docs}}
                public global::System.Collections.Generic.IAsyncEnumerable<{{f.ReturnSource}}> {{methodName}}({{string.Join(", ", signature)}})
                    => {{Receiver(f)}}.StreamAsync<{{f.ReturnSource}}>({{Names.Literal(f.ExportName)}}, {{args}}, {{Names.Formatter(f.ReturnType!, assemblyKey)}}, {{options}}, {{token}});
                """);
            return;
        }

        string returnType = f.ReturnType is null ? $"{Names.Tasks}.Task" : $"{Names.Tasks}.Task<{f.ReturnSource}>";
        string call = f.ReturnType is null
            ? $"{Receiver(f)}.InvokeAsync({Names.Literal(f.ExportName)}, {args}, {options}, {token})"
            : $"{Receiver(f)}.InvokeAsync<{f.ReturnSource}>({Names.Literal(f.ExportName)}, {args}, {Names.Formatter(f.ReturnType, assemblyKey)}, {options}, {token})";
        w.Block($$"""
            {{docs}}
            public {{returnType}} {{methodName}}({{string.Join(", ", signature)}})
                => {{call}};
            """);

        if (IsData(f.ReturnType)) EmitAsPointerMethod(w, f, stem, parameters, submitSignature, submitArgs, options, token, tokenParams, progress);
        if (f.ReturnType is not null && parameters.Any(p => IsData(p.Type))) EmitPointerArgumentsOverload(w, f, assemblyKey, methodName, stem, parameters, options, token, tokenParams, progress);

        // The same call submitted as a job: a typed handle at once, the result when it is ready.
        string resultSource = f.ReturnType is null ? "object?" : f.ReturnSource!;
        string resultFormatter = f.ReturnType is null ? Names.Builtin + ".Object" : Names.Formatter(f.ReturnType, assemblyKey);
        w.Block($$"""

            /// <summary>Submits <c>{{f.ExportName}}</c> as a job and returns at once with a handle to it: the job runs on if this client disconnects, and any client can attach to it by id. Await the handle (or <c>WaitAsync</c>) for the result.</summary>
            {{ParamDocs(f, parameters, tokenParams, progress)}}
            /// <param name="{{options}}">Per-call options: the job's timeout (counted from now), where its output goes when waited for, serialization.</param>
            /// <param name="{{token}}">Cancels the submission (not the job: cancel that with the handle).</param>
            /// <returns>The job's handle.</returns>
            public {{Names.Tasks}}.Task<{{Names.Runtime}}.IpyRpcJob<{{resultSource}}>> Submit{{stem}}Async({{string.Join(", ", submitSignature)}})
                => {{Receiver(f)}}.SubmitAsync<{{resultSource}}>({{Names.Literal(f.ExportName)}}, {{submitArgs}}, {{resultFormatter}}, {{options}}, {{token}});
            """);
    }
}
