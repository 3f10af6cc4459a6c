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
        w.Namespace(key.Namespace);

        // A client generated from a schema file has no implementation here to dispatch to: the proxy only.
        if (key.SchemaFile is null) EmitDispatch(w, service);
        if (service.Functions.Count > 0 || key.SchemaFile is not null)
        {
            if (key.SchemaFile is null) w.Line();
            EmitProxy(w, service);
        }

        string code = key.Namespace.Length > 0 ? InNamespace(w.ToString(), key.Namespace, DeclaredNames(service)) : w.ToString();
        return CodeWriter.Header + Names.Aliases(service.AssemblyKey, code) + "\n" + code;
    }

    /// <summary>
    /// The generated code with the names of the file's own namespace written short: <c>global::Demo.Report</c> is
    /// <c>Report</c> inside <c>namespace Demo;</c>, which finds it first, unless <paramref name="declared"/> (the
    /// generated types and the dispatch's members) has that name. String and character literals are left as written.
    /// </summary>
    private static string InNamespace(string code, string ns, HashSet<string> declared)
    {
        string prefix = "global::" + ns + ".";
        var text = new StringBuilder(code.Length);
        int i = 0;
        while (i < code.Length)
        {
            char c = code[i];
            if (c is '"' or '\'')
            {
                // A literal, with its escapes (generated code writes regular literals only), or an apostrophe in a comment: to the line's end at most.
                int end = i + 1;
                while (end < code.Length && code[end] != c && code[end] != '\n') end += code[end] == '\\' ? 2 : 1;
                end = System.Math.Min(end + 1, code.Length);
                text.Append(code, i, end - i);
                i = end;
                continue;
            }

            if (c == 'g' && string.CompareOrdinal(code, i, prefix, 0, prefix.Length) == 0 && (i == 0 || !IsNameChar(code[i - 1])))
            {
                int start = i + prefix.Length, end = start;
                while (end < code.Length && IsNameChar(code[end])) end++;
                if (end > start && !declared.Contains(code.Substring(start, end - start)))
                {
                    i = start;
                    continue;
                }
            }

            text.Append(c);
            i++;
        }

        return text.ToString();
    }

    private static bool IsNameChar(char c) => char.IsLetterOrDigit(c) || c == '_';

    // The names a short name could find in this file before its namespace's types: the generated classes, nested ones included, and the dispatch's members.
    private static HashSet<string> DeclaredNames(ServiceModel service)
    {
        var names = new HashSet<string>(System.StringComparer.Ordinal) { DispatchName(service.Key), ProxyName(service.Key), "Register", "CreateFunctions", "Events" };
        foreach (FunctionModel f in service.Functions)
        {
            string[] segments = f.ExportName.Split('.');
            for (int i = 0; i < segments.Length - 1; i++)
            {
                names.Add(Pascal(segments[i]) + "Namespace");
                names.Add(Pascal(segments[i]) + "FunctionsNamespace");
            }
        }

        return names;
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
            $"new() {{ Name = {Names.Literal(e.EventName)}, PayloadType = {Names.Literal(e.PayloadDisplay)}, PayloadSchema = {JsonSchema.Reference(JsonSchema.Of(e.Payload, e.Objects))}, Summary = {Names.Literal(e.Summary)}, Remarks = {Names.Literal(e.Remarks)}, Fingerprint = {Names.Literal(Fingerprint.Of(e))} }},"));
        string functions = string.Join("\n", service.Functions.Select(f =>
            $"new({CodeWriter.Indent(Descriptor(f), 4).TrimStart()},\n    {Invoker(f, service)}, {(f.ReturnKind is ReturnKind.Void or ReturnKind.Value ? "true" : "false")}, {(f.IsStatic ? "null" : "target")}){ArgumentFormatters(f)},"));
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
            /// <summary>The functions, bound to <paramref name="target"/> for instance methods: each a descriptor and a reflection-free invoker.</summary>
            public static global::System.Collections.Generic.IReadOnlyList<{{Names.Runtime}}.IpyRpcFunction> CreateFunctions(object? target) => new {{Names.Runtime}}.IpyRpcFunction[]
            {
            {{CodeWriter.Indent(functions, 4)}}
            };
            """);

        w.Close();
    }

    // The descriptor: name, docs, return, fingerprint and parameters (each optional exactly when it has a default), then what only some functions have.
    private static string Descriptor(FunctionModel f)
    {
        string? returnSchema = JsonSchema.ReturnOf(f);
        ParameterModel? progress = f.Parameters.FirstOrDefault(p => p.IsProgress);
        IEnumerable<string> parameters = f.Parameters.Where(p => p.IsArgument).Select(p =>
            $"\nnew({Names.Literal(p.Name)}, {Names.Literal(p.Display)}, {JsonSchema.Reference(JsonSchema.Of(p.Type!, f.Objects))}, {Names.Literal(p.Doc)}"
            + (p.DefaultExpression is null ? ")" : $", {Names.Literal(p.DefaultDisplay ?? p.DefaultExpression)})")
            + (p.ParamsEmpty is null ? "" : " { IsParams = true, IsOptional = true }"));
        var extras = new List<string>();
        if (f.ReturnKind == ReturnKind.Stream) extras.Add("IsStream = true");
        if (progress is not null)
        {
            extras.Add($"ProgressType = {Names.Literal(progress.Type!.Display)}");
            extras.Add($"ProgressSchema = {JsonSchema.Reference(JsonSchema.Of(progress.Type!, f.Objects))}");
        }

        if (f.Docs.Exceptions.Count > 0)
        {
            extras.Add($"Exceptions = new {Names.Runtime}.ExceptionDoc[] {{ {string.Join(", ", f.Docs.Exceptions.Select(e => $"new({Names.Literal(e.Name)}, {Names.Literal(e.Text)})"))} }}");
        }

        return $"new({Names.Literal(f.ExportName)}, {Names.Literal(f.Docs.Summary)}, {Names.Literal(f.Docs.Remarks)}, {Names.Literal(f.Docs.Returns)}, {Names.Literal(f.ReturnDisplay)}, "
            + $"{(returnSchema is null ? "null" : JsonSchema.Reference(returnSchema))}, {Names.Literal(Fingerprint.Of(f))}, [{string.Join(",", parameters)}])"
            + (extras.Count == 0 ? "" : $" {{ {string.Join(", ", extras)} }}");
    }

    // Each argument's formatter, in the descriptor's order, for reading a job's arguments when it is submitted.
    private static string ArgumentFormatters(FunctionModel f)
    {
        string[] formatters = f.Parameters.Where(p => p.IsArgument).Select(p => Names.Formatter(p.Type!)).ToArray();
        return formatters.Length == 0 ? "" : $" {{ ArgumentFormatters = new {Names.Runtime}.Formatting.IpyRpcFormatter[] {{ {string.Join(", ", formatters)} }} }}";
    }

    // The invoker: reads the arguments in order, each with its formatter (a missing optional one takes its default), calls the method, sets the result.
    private static string Invoker(FunctionModel f, ServiceModel service)
    {
        var arguments = new List<string>();
        int index = 0;
        foreach (ParameterModel p in f.Parameters)
        {
            string formatter = p.Type is null ? "" : Names.Formatter(p.Type);
            arguments.Add(p.IsProgress ? $"call.Progress({formatter})"
                : p.FilledBy is { } filledBy ? filledBy
                : p.ParamsEmpty is { } empty ? $"call.ArgOrDefault({index++}, {formatter}, {empty})"
                : p.DefaultExpression is null ? $"call.Arg({index++}, {formatter})"
                : $"call.ArgOrDefault({index++}, {formatter}, {p.DefaultExpression})");
        }

        // An interface with static abstract members cannot be a type argument: cast instead.
        string receiver = f.IsStatic ? service.Key.FullName
            : service.Key.HasStaticAbstractMembers ? $"(({service.Key.FullName})call.Target<object>())"
            : $"call.Target<{service.Key.FullName}>()";
        string invocation = $"{receiver}.{f.MethodName}({string.Join(", ", arguments)})";
        string? result = f.ReturnType is null ? null : Names.Formatter(f.ReturnType);
        return "static call => " + f.ReturnKind switch
        {
            ReturnKind.Void => $"{{ {invocation}; return call.ReturnedVoid(); }}",
            ReturnKind.Value => $"call.Returned({invocation}, {result})",
            ReturnKind.Task or ReturnKind.ValueTask => $"call.ReturnVoidAsync({invocation})",
            ReturnKind.Stream => $"call.ReturnStreamAsync({invocation}, {result})",
            _ => $"call.ReturnAsync({invocation}, {result})",
        };
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
            /// <remarks>A record (or matrix, tensor, data frame) argument takes the value or a <see cref="{{Names.Runtime}}.RemotePointer{T}"/> to it; a collection argument has an overload taking the pointer. Any call can be submitted as a job instead, <c>client.SubmitAsync(() =&gt; proxy.F(x))</c>, or made for a pointer to its result, <c>client.AsPointerAsync(() =&gt; proxy.F(x))</c>.</remarks>
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
        EmitLevel(w, Tree(service.Functions), key.IsPublic);
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
    private static void EmitLevel(CodeWriter w, Level level, bool isPublic)
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
            EmitProxyMethod(w, f, methodNames[f]);
        }

        foreach ((Level child, string property, string cls) in nested)
        {
            w.Block($$"""

                /// <summary>The proxy of the remote functions under <c>{{child.Path}}</c> (its property lists them).</summary>
                {{CodeWriter.GeneratedCode}}
                {{(isPublic ? "public" : "internal")}} sealed partial class {{cls}}
                {
                    private readonly {{Names.Runtime}}.IpyRpcPeer _client;

                    internal {{cls}}({{Names.Runtime}}.IpyRpcPeer peer) => _client = peer;
                """).Push();
            EmitLevel(w, child, isPublic);
            w.Close();
        }
    }

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
        TypeKind.Sequence or TypeKind.Dictionary or TypeKind.Object or TypeKind.Custom => true,
        _ => false,
    };

    /// <summary>The peer a proxy method calls through: for a client generated from a schema file, after checking that the function still has the schema's signature.</summary>
    private static string Receiver(FunctionModel f)
        => f.Check is null ? "_client"
            : $"{Names.Runtime}.SchemaGuard.Checked(_client, {Names.Literal(f.ExportName)}, {Names.Literal(f.Check.Fingerprint)}, {Names.Literal(f.Check.Signature)}, {Names.Literal(f.Check.File)})";

    // A collection (an array, a list, a dictionary): its parameter keeps its own type, so a collection expression
    // ([1, 2, 3]) can be passed, and a pointer goes to an overload. C# has no collection expression for ValueOrPointer<T>.
    private static bool IsCollection(TypeModel type) => type.Kind is TypeKind.Sequence or TypeKind.Dictionary
        || (type.Kind == TypeKind.Builtin && type.Builtin is { } b && b.EndsWith("Array", System.StringComparison.Ordinal));

    // Other data (records, matrices, tensors, data frames) takes a value or a pointer to one (ValueOrPointer<T>), one method serving both.
    private static bool TakesPointer(ParameterModel p) => IsData(p.Type) && !IsCollection(p.Type!);

    // The proxy's parameter: data as ValueOrPointer<T> (its default: default, the value's own), the rest as declared.
    private static string ProxyParameter(ParameterModel p)
        => TakesPointer(p) ? $"{Names.Runtime}.ValueOrPointer<{p.Source}> {Names.Id(p.Name)}{(p.DefaultExpression is null ? "" : " = default")}"
            : p.DefaultExpression is null ? $"{p.Source} {Names.Id(p.Name)}" : $"{p.Source} {Names.Id(p.Name)} = {p.DefaultExpression}";

    // The docs of the pointer-argument overload: its own summary, the function's parameters, progress, options, token, returns.
    private static string PointerOverloadDocs(FunctionModel f, ParameterModel[] parameters, HashSet<string> tokenParams, ParameterModel? progress, string options, string token, bool stream)
        => $$"""
            /// <summary>Calls <c>{{f.ExportName}}</c> with pointers for its collection arguments: each is resolved where the function runs (on the holder itself without a byte moving), never passing through this caller.</summary>
            {{ParamDocs(f, parameters, tokenParams, progress)}}
            {{CodeWriter.If(progress is not null, $"/// <param name=\"{progress?.Name}\">Receives the function's progress reports as they happen, before the call returns.</param>")}}
            /// <param name="{{options}}">Timeout, where output goes, serialization.</param>
            /// <param name="{{token}}">{{(stream ? "Cancels the call; stopping the enumeration early cancels it too." : "Cancels the call and the remote function.")}}</param>
            {{CodeWriter.If(f.ReturnType is not null, $"/// <returns>The {(stream ? "items" : "result")} of <c>{f.ExportName}</c>.</returns>")}}
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

    private static void EmitProxyMethod(CodeWriter w, FunctionModel f, string methodName)
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
            /// <param name="{{options}}">Timeout, where output goes, serialization{{(stream ? ", how many items may arrive ahead of the enumeration (StreamWindow)" : "")}}.</param>
            /// <param name="{{token}}">{{(stream ? "Cancels the call; stopping the enumeration early cancels it too." : "Cancels the call and the remote function.")}}</param>
            {{CodeWriter.If(returnsUndocumented, stream
                ? $"/// <returns>The items of <c>{f.ExportName}</c>, as the remote function produces them.</returns>"
                : $"/// <returns>The result of <c>{f.ExportName}</c>.</returns>")}}
            """;

        EmitCall(w, f, methodName, parameters, progress, options, token, docs, pointers: false);

        // Collections keep their type (so [1, 2, 3] can be passed); an overload takes pointers for them instead.
        if (parameters.Any(p => IsData(p.Type) && IsCollection(p.Type!)))
        {
            w.Line();
            EmitCall(w, f, methodName, parameters, progress, options, token, PointerOverloadDocs(f, parameters, tokenParams, progress, options, token, stream), pointers: true);
        }
    }

    // One proxy method: the function's parameters (with pointers for its collections, when asked), progress, options, token.
    private static void EmitCall(CodeWriter w, FunctionModel f, string methodName, ParameterModel[] parameters, ParameterModel? progress,
        string options, string token, string docs, bool pointers)
    {
        var signature = new List<string>();
        var args = new StringBuilder($"new {Names.Runtime}.IpyRpcArguments()");
        foreach (ParameterModel p in parameters)
        {
            if (pointers && IsData(p.Type) && IsCollection(p.Type!))
            {
                string element = p.Source.EndsWith("?", System.StringComparison.Ordinal) ? p.Source.Substring(0, p.Source.Length - 1) : p.Source;
                signature.Add($"{Names.Runtime}.RemotePointer<{element}> {Names.Id(p.Name)}");
                args.Append($".Add({Names.Id(p.Name)}, {Names.Runtime}.RemotePointerFormatter<{element}>.Instance)");
            }
            else
            {
                signature.Add(ProxyParameter(p));
                args.Append($".Add({Names.Id(p.Name)}, {Names.Formatter(p.Type!)})");
            }
        }

        if (progress is not null)
        {
            signature.Add($"{progress.Source.TrimEnd('?')}? {Names.Id(progress.Name)} = null");
            args.Append($".Progress({Names.Id(progress.Name)}, {Names.Formatter(progress.Type!)})");
        }

        signature.Add($"{Names.Runtime}.CallOptions? {options} = null");
        signature.Add($"{Names.CancellationToken} {token} = default");
        string name = Names.Literal(f.ExportName);
        (string returnType, string call) = f.ReturnKind == ReturnKind.Stream
            ? ($"global::System.Collections.Generic.IAsyncEnumerable<{f.ReturnSource}>", $"StreamAsync<{f.ReturnSource}>({name}, {args}, {Names.Formatter(f.ReturnType!)}, {options}, {token})")
            : f.ReturnType is null ? ($"{Names.Tasks}.Task", $"InvokeAsync({name}, {args}, {options}, {token})")
            : ($"{Names.Tasks}.Task<{f.ReturnSource}>", $"InvokeAsync({name}, {args}, {Names.Formatter(f.ReturnType)}, {options}, {token})");
        w.Block($$"""
            {{docs}}
            public {{returnType}} {{methodName}}({{string.Join(", ", signature)}})
                => {{Receiver(f)}}.{{call}};
            """);
    }
}
