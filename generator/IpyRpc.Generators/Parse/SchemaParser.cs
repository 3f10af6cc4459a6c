using System;
using System.Collections.Generic;
using System.Linq;
using System.Text;
using System.Text.RegularExpressions;
using IpyRpc.Generators.Emit;
using IpyRpc.Generators.Model;
using Microsoft.CodeAnalysis.Text;

namespace IpyRpc.Generators.Parse;

/// <summary>
/// Reads a schema file (<c>*.ipyrpc.json</c>: the OpenRPC document an IpyRpc server writes, see docs/SCHEMA.md)
/// into the models the proxy and formatter emitters already use, plus the records and enums to declare.
/// Types are rebuilt from the schemas' <c>x-ipyrpc</c> annotations, never from C# type names, so the client
/// writes the same bytes the server reads.
/// </summary>
internal sealed class SchemaParser
{
    public const string Extension = ".ipyrpc.json";

    private readonly string _path;
    private readonly string _text;
    private readonly string _namespace;
    private readonly Dictionary<string, TypeModel> _enums = new(StringComparer.Ordinal);
    private readonly Dictionary<string, ObjectModel?> _objects = new(StringComparer.Ordinal);
    private readonly Dictionary<string, string> _clientNames = new(StringComparer.Ordinal);
    private readonly HashSet<string> _takenNames = new(StringComparer.Ordinal);

    private SchemaParser(string path, string text, string ns)
    {
        _path = path;
        _text = text;
        _namespace = ns;
    }

    /// <summary>A shape the client cannot be generated for (the method is left out, with a warning).</summary>
    private sealed class ShapeException : Exception
    {
        public ShapeException(string message, JsonNode? at) : base(message) => At = at;

        public JsonNode? At { get; }
    }

    /// <param name="path">The file's path.</param>
    /// <param name="text">Its text, or null when it could not be read.</param>
    /// <param name="ns">The namespace the client goes in (item metadata IpyRpcNamespace), or null for RootNamespace.Stem.</param>
    /// <param name="clientName">The client class's name (item metadata IpyRpcClient), or null for StemClient.</param>
    /// <param name="rootNamespace">The project's RootNamespace.</param>
    public static SchemaResult Parse(string path, string? text, string? ns, string? clientName, string? rootNamespace)
    {
        string file = System.IO.Path.GetFileName(path);
        string stem = ServiceEmitter.Pascal(file.Substring(0, file.Length - Math.Min(file.Length, Extension.Length)));
        string name = string.IsNullOrWhiteSpace(clientName) ? stem + "Client" : clientName!.Trim();
        string space = !string.IsNullOrWhiteSpace(ns) ? ns!.Trim() : string.IsNullOrWhiteSpace(rootNamespace) ? stem : rootNamespace!.Trim() + "." + stem;
        var diagnostics = new List<DiagnosticInfo>();
        if (!IsIdentifier(name) || !space.Split('.').All(IsIdentifier))
        {
            diagnostics.Add(Problem(path, "", 0, $"the client name '{name}' in namespace '{space}' is not a valid C# name; set IpyRpcClient and IpyRpcNamespace on the item"));
            return new SchemaResult(null, diagnostics.ToEquatableArray());
        }

        if (text is null)
        {
            diagnostics.Add(Problem(path, "", 0, "the file could not be read"));
            return new SchemaResult(null, diagnostics.ToEquatableArray());
        }

        JsonNode root;
        try
        {
            root = JsonReader.Parse(text);
        }
        catch (JsonSyntaxException e)
        {
            diagnostics.Add(Problem(path, text, e.Position, "it is not valid JSON: " + e.Message));
            return new SchemaResult(null, diagnostics.ToEquatableArray());
        }

        var parser = new SchemaParser(path, text, space);
        string eventsClass = EventsClassName(name);
        parser._takenNames.Add(name); // the server's types take other names than the client's and its events'
        parser._takenNames.Add(eventsClass);
        if (root is not JsonObject document || document.String("openrpc") is null || document["methods"] is not JsonArray methods)
        {
            diagnostics.Add(Problem(path, text, root.Position, "it is not an OpenRPC document (an object with \"openrpc\" and a \"methods\" array)"));
            return new SchemaResult(null, diagnostics.ToEquatableArray());
        }

        if (document["x-ipyrpc-schema"] is not JsonLiteral version || !int.TryParse(version.Text, out int v))
        {
            diagnostics.Add(Problem(path, text, document.Position, "it has no \"x-ipyrpc-schema\" version, so it was not written by an IpyRpc server (or by one older than this generator); write it with `ipyrpc schema URL`"));
            return new SchemaResult(null, diagnostics.ToEquatableArray());
        }

        if (v > 1)
        {
            diagnostics.Add(Problem(path, text, version.Position, $"it is schema version {v}, newer than this generator reads (1); update the IpyRpc package"));
            return new SchemaResult(null, diagnostics.ToEquatableArray());
        }

        var key = new ServiceKey(space, "global::" + space + "." + name, name, Hint(space + "." + name), name, true, true, false, SchemaFile: file);
        var functions = new List<FunctionModel>();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (JsonNode item in methods.Items)
        {
            try
            {
                FunctionModel f = parser.Method(item, key, file);
                if (!seen.Add(f.ExportName)) throw new ShapeException($"the method '{f.ExportName}' is listed twice", item);
                functions.Add(f);
            }
            catch (ShapeException e)
            {
                string method = (item as JsonObject)?.String("name") ?? "(unnamed)";
                diagnostics.Add(new DiagnosticInfo(Diagnostics.SchemaMethodSkipped, parser.Location(e.At ?? item),
                    new[] { method, file, e.Message }.ToEquatableArray()));
            }
        }

        // The events it publishes: a static class of typed declarations, to subscribe with as with the server's own.
        var events = new List<EventModel>();
        if (document["x-ipyrpc-events"] is JsonArray eventItems)
        {
            var eventNames = new HashSet<string>(StringComparer.Ordinal);
            foreach (JsonNode item in eventItems.Items)
            {
                try
                {
                    EventModel e = parser.Event(item, key, file);
                    if (!eventNames.Add(e.EventName)) throw new ShapeException($"the event '{e.EventName}' is listed twice", item);
                    events.Add(e);
                }
                catch (ShapeException e)
                {
                    string eventName = (item as JsonObject)?.String("name") ?? "(unnamed)";
                    diagnostics.Add(new DiagnosticInfo(Diagnostics.SchemaEventSkipped, parser.Location(e.At ?? item),
                        new[] { eventName, file, e.Message }.ToEquatableArray()));
                }
            }
        }

        if (parser._objects.FirstOrDefault(o => o.Value is null) is { Key: { } undefined })
        {
            diagnostics.Add(Problem(path, text, 0, $"the type {undefined} is referred to but never described"));
            return new SchemaResult(null, diagnostics.ToEquatableArray());
        }

        EquatableArray<ObjectModel> records = parser._objects.Values.Select(o => o!).Where(o => !o.IsTuple).OrderBy(o => o.FullName, StringComparer.Ordinal).ToEquatableArray();
        EquatableArray<ObjectModel> all = parser._objects.Values.Select(o => o!).OrderBy(o => o.FullName, StringComparer.Ordinal).ToEquatableArray();
        var model = new SchemaModel(
            key,
            functions.Select(f => f with { Objects = all }).OrderBy(f => f.ExportName, StringComparer.Ordinal).ToEquatableArray(),
            records,
            parser._enums.Values.OrderBy(e => e.FullName, StringComparer.Ordinal).ToEquatableArray(),
            events.Select(e => e with { Objects = all }).OrderBy(e => e.EventName, StringComparer.Ordinal).ToEquatableArray(),
            eventsClass);
        return new SchemaResult(model, diagnostics.ToEquatableArray());
    }

    private FunctionModel Method(JsonNode item, ServiceKey key, string file)
    {
        if (item is not JsonObject method || method.String("name") is not { Length: > 0 } exportName)
        {
            throw new ShapeException("a method needs a name", item);
        }

        var parameters = new List<ParameterModel>();
        var raw = new List<DocEntry>();
        string? summary = method.String("summary");
        string? remarks = method.String("x-ipyrpc-remarks");
        if (summary is not null) raw.Add(new DocEntry("summary", Element("summary", summary)));
        if (remarks is not null) raw.Add(new DocEntry("remarks", Element("remarks", remarks)));
        var paramDocs = new List<DocEntry>();
        if (method["params"] is JsonArray ps)
        {
            foreach (JsonNode pNode in ps.Items)
            {
                if (pNode is not JsonObject p || p.String("name") is not { Length: > 0 } pName || !IsName(pName))
                {
                    throw new ShapeException("a parameter needs a name that is a C# identifier", pNode);
                }

                if (p["schema"] is not JsonObject pSchema) throw new ShapeException($"parameter '{pName}' has no schema", pNode);
                TypeModel type = Map(pSchema);
                string? doc = p.String("description");
                bool optional = p["required"] is JsonLiteral { Text: "false" };
                string? defaultText = pSchema.String("x-csharp-default");
                string? expression = optional && defaultText is not null ? DefaultExpression(type, defaultText) : null;
                if (doc is not null)
                {
                    paramDocs.Add(new DocEntry(pName, doc));
                    raw.Add(new DocEntry("param:" + pName, $"<param name=\"{Escape(pName)}\">{Escape(doc)}</param>"));
                }

                parameters.Add(new ParameterModel(pName, type, null, expression, doc, type.Display, type.FullName, DefaultDisplay: expression is null ? null : defaultText));
            }
        }

        // The function reports progress: the proxy takes an IProgress<T> for the reports, as a generated one does.
        if (method["x-ipyrpc-progress"] is JsonObject progressSchema)
        {
            TypeModel reported = Map(progressSchema);
            string name = "progress";
            while (parameters.Any(p => p.Name == name)) name = "on" + ServiceEmitter.Pascal(name);
            parameters.Add(new ParameterModel(name, reported, "progress", null, null, $"IProgress<{reported.Display}>", $"global::System.IProgress<{reported.FullName}>", IsProgress: true));
        }

        ReturnKind kind = ReturnKind.Value;
        TypeModel? returnType = null;
        string? returns = null;
        if (method["result"] is JsonObject result && result["schema"] is JsonObject rSchema)
        {
            returns = result.String("description");
            bool stream = method.Bool("x-ipyrpc-stream");
            if (rSchema.String("type") == "null" && rSchema.String("x-ipyrpc") is null)
            {
                kind = ReturnKind.Void;
            }
            else if (stream)
            {
                kind = ReturnKind.Stream;
                returnType = Map(rSchema["items"] as JsonObject ?? throw new ShapeException("a streaming result's schema needs its items", rSchema));
            }
            else
            {
                returnType = Map(rSchema);
            }
        }
        else
        {
            throw new ShapeException("it has no result schema", item);
        }

        if (returns is not null) raw.Add(new DocEntry("returns", Element("returns", returns)));
        var exceptions = new List<DocEntry>();
        if (method["x-ipyrpc-exceptions"] is JsonArray es)
        {
            foreach (JsonObject e in es.Items.OfType<JsonObject>())
            {
                exceptions.Add(new DocEntry(e.String("type") ?? "Exception", e.String("description") ?? ""));
            }
        }

        var docs = new DocModel(summary, remarks, returns, paramDocs.ToEquatableArray(), exceptions.ToEquatableArray(), raw.ToEquatableArray());
        string segment = exportName.Substring(exportName.LastIndexOf('.') + 1);
        SchemaCheck? check = method.String("x-ipyrpc-fingerprint") is { } fingerprint
            ? new SchemaCheck(fingerprint, method.String("x-ipyrpc-signature") ?? exportName, file)
            : null;
        return new FunctionModel(
            exportName,
            ServiceEmitter.Pascal(segment),
            key,
            true,
            kind,
            returnType,
            returnType?.Display ?? "void",
            returnType?.FullName ?? "void",
            parameters.ToEquatableArray(),
            docs,
            EquatableArray<ObjectModel>.Empty,
            check);
    }

    private EventModel Event(JsonNode item, ServiceKey key, string file)
    {
        if (item is not JsonObject node || node.String("name") is not { Length: > 0 } name
            || name.StartsWith(".", StringComparison.Ordinal) || name.EndsWith(".", StringComparison.Ordinal) || name.Contains("..")
            || !name.All(c => char.IsLetterOrDigit(c) || c is '_' or '-' or '.'))
        {
            throw new ShapeException("an event needs a name of letters, digits, '_', '-', and dots between non-empty segments", item);
        }

        if (node["schema"] is not JsonObject schema) throw new ShapeException($"the event '{name}' has no payload schema", item);
        TypeModel payload = Map(schema);
        SchemaCheck? check = node.String("x-ipyrpc-fingerprint") is { } fingerprint ? new SchemaCheck(fingerprint, schema.String("x-csharp-type") ?? payload.Display, file) : null;
        return new EventModel(name, ServiceEmitter.Pascal(name.Substring(name.LastIndexOf('.') + 1)), key, payload, payload.Display,
            node.String("summary"), node.String("x-ipyrpc-remarks"), EquatableArray<ObjectModel>.Empty, check);
    }

    /// <summary>The events class beside a client: <c>ChatClient</c> gets <c>ChatEvents</c>, any other name <c>NameEvents</c>.</summary>
    private static string EventsClassName(string client)
        => (client.EndsWith("Client", StringComparison.Ordinal) && client.Length > "Client".Length ? client.Substring(0, client.Length - "Client".Length) : client) + "Events";

    /// <summary>The client's type for a schema node.</summary>
    private TypeModel Map(JsonObject node)
    {
        if (node["allOf"] is JsonArray { Items.Count: 1 } all && all.Items[0] is JsonObject inner) node = inner;
        string kind = node.String("x-ipyrpc")
            ?? throw new ShapeException("a schema has no \"x-ipyrpc\" annotation, so how its value travels is unknown (the server's IpyRpc may be older than this generator)", node);
        switch (kind)
        {
            case "enum":
                return Enum(node);
            case "nullable":
                {
                    TypeModel value = Map(First(node, "anyOf"));
                    if (!value.IsValueType) return value; // a reference type is nullable already
                    return new TypeModel(TypeKind.Nullable, value.FullName + "?", value.Display + "?", true, null, new[] { value }.ToEquatableArray(), null, null);
                }

            case "list":
                {
                    TypeModel item = Map(node["items"] as JsonObject ?? throw new ShapeException("a list needs its items' schema", node));
                    return new TypeModel(TypeKind.Sequence, item.FullName + "[]", item.Display + "[]", false, null, new[] { item }.ToEquatableArray(), "static l => l.ToArray()", null);
                }

            case "map":
                {
                    TypeModel value = Map(node["additionalProperties"] as JsonObject ?? throw new ShapeException("a map needs its values' schema", node));
                    if (node["x-ipyrpc-key"] is JsonObject keyNode)
                    {
                        // Keys that are not strings (integers, GUIDs, enums, dates).
                        TypeModel key = Map(keyNode);
                        if (key.Kind != TypeKind.Enum && key.Builtin is not ("SByte" or "Byte" or "Int16" or "UInt16" or "Int32" or "UInt32" or "Int64" or "UInt64" or "Guid" or "DateOnly" or "DateTime"))
                        {
                            throw new ShapeException($"a map's keys are strings, integers, GUIDs, enums or dates, not {key.Display}", node);
                        }

                        return new TypeModel(TypeKind.Dictionary, $"global::System.Collections.Generic.Dictionary<{key.FullName}, {value.FullName}>", $"Dictionary<{key.Display}, {value.Display}>",
                            false, null, new[] { value, key }.ToEquatableArray(), "static d => d", null);
                    }

                    return new TypeModel(TypeKind.Dictionary, $"global::System.Collections.Generic.Dictionary<string, {value.FullName}>", $"Dictionary<string, {value.Display}>",
                        false, null, new[] { value }.ToEquatableArray(), "static d => d", null);
                }

            case "tuple":
                return Tuple(node);
            case "object":
                return Object(node);
            case "custom":
                // A type with the server's own formatter: this client has only its plain data.
                return Builtin("Object")!;
            default:
                if (Builtin(kind) is { } builtin) return builtin;
                throw new ShapeException($"\"x-ipyrpc\": \"{kind}\" is not a kind this generator knows", node);
        }
    }

    private static JsonObject First(JsonObject node, string name)
        => node[name] is JsonArray { Items.Count: > 0 } a && a.Items[0] is JsonObject o ? o : throw new ShapeException($"\"{name}\" needs a schema", node);

    private TypeModel Enum(JsonObject node)
    {
        string server = node.String("x-csharp-full-name") ?? throw new ShapeException("an enum needs \"x-csharp-full-name\"", node);
        if (_enums.TryGetValue(server, out TypeModel? known)) return known;
        bool flags = node.Bool("x-enum-flags");
        var names = (node[flags ? "x-enum-names" : "enum"] as JsonArray)?.Items.OfType<JsonString>().Select(s => s.Value).ToArray() ?? [];
        var values = (node["x-enum-values"] as JsonArray)?.Items.OfType<JsonLiteral>().Select(l => l.Text).ToArray() ?? [];
        var docs = (node["x-enum-descriptions"] as JsonArray)?.Items.Select(d => (d as JsonString)?.Value).ToArray() ?? [];
        if (names.Length == 0 || values.Length != names.Length || names.Any(n => !IsIdentifier(n)) || values.Any(v => !Regex.IsMatch(v, "^-?[0-9]+$")))
        {
            throw new ShapeException($"the enum {server} needs its names in \"{(flags ? "x-enum-names" : "enum")}\" and as many integer values in \"x-enum-values\"", node);
        }

        string underlying = node.String("x-enum-underlying") ?? "int";
        if (underlying is not ("byte" or "sbyte" or "short" or "ushort" or "int" or "uint" or "long" or "ulong")) throw new ShapeException($"'{underlying}' is not an enum's underlying type", node);
        string name = ClientName(server);
        var members = names.Select((n, i) => new EnumMemberModel(n, values[i], i < docs.Length && docs[i] is { Length: > 0 } d ? d : null)).ToEquatableArray();
        var type = new TypeModel(TypeKind.Enum, $"global::{_namespace}.{name}", name, true, null, EquatableArray<TypeModel>.Empty, null, underlying, members, node.String("description"), flags);
        _enums[server] = type;
        return type;
    }

    private TypeModel Tuple(JsonObject node)
    {
        if (node["prefixItems"] is not JsonArray items || items.Items.Count is 0 or > 7) throw new ShapeException("a tuple needs 1 to 7 \"prefixItems\"", node);
        TypeModel[] elements = items.Items.Select(i => Map(i as JsonObject ?? throw new ShapeException("a tuple element needs a schema", i))).ToArray();
        string full = elements.Length == 1 ? $"global::System.ValueTuple<{elements[0].FullName}>" : "(" + string.Join(", ", elements.Select(e => e.FullName)) + ")";
        string display = elements.Length == 1 ? $"ValueTuple<{elements[0].Display}>" : "(" + string.Join(", ", elements.Select(e => e.Display)) + ")";
        if (!_objects.ContainsKey(full))
        {
            var members = elements.Select((e, i) => new MemberModel("Item" + (i + 1), "item" + (i + 1), e, false, false, i)).ToEquatableArray();
            _objects[full] = new ObjectModel(full, display, true, true, members, elements.Length);
        }

        return new TypeModel(TypeKind.Tuple, full, display, true, null, EquatableArray<TypeModel>.Empty, null, null);
    }

    private TypeModel Object(JsonObject node)
    {
        string server = node.String("x-csharp-full-name") ?? throw new ShapeException("an object needs \"x-csharp-full-name\"", node);
        bool isStruct = node.Bool("x-csharp-struct");
        string name = ClientName(server);
        string full = $"global::{_namespace}.{name}";
        var reference = new TypeModel(TypeKind.Object, full, name, isStruct, null, EquatableArray<TypeModel>.Empty, null, null);
        if (_objects.ContainsKey(full) || node["properties"] is not JsonObject properties)
        {
            if (!_objects.ContainsKey(full)) _objects[full] = null; // named before it is described (a type that contains itself)
            return reference;
        }

        _objects[full] = null; // in progress: where it recurs inside itself, the reference above is used
        var required = new HashSet<string>((node["required"] as JsonArray)?.Items.OfType<JsonString>().Select(s => s.Value) ?? [], StringComparer.Ordinal);
        var members = new List<MemberModel>();
        var memberNames = new HashSet<string>(StringComparer.Ordinal);
        foreach (KeyValuePair<string, JsonNode> p in properties.Properties)
        {
            if (p.Value is not JsonObject memberNode) throw new ShapeException($"member '{p.Key}' of {server} needs a schema", p.Value);
            string memberName = memberNode.String("x-csharp-name") ?? ServiceEmitter.Pascal(p.Key);
            if (!IsIdentifier(memberName)) memberName = ServiceEmitter.Pascal(memberName);
            if (memberName == name) memberName += "Value"; // a member may not be named like its type
            while (!memberNames.Add(memberName)) memberName += "_";
            TypeModel type = Map(memberNode);
            members.Add(new MemberModel(memberName, p.Key, type, false, false, members.Count, required.Contains(p.Key), memberNode.String("description")));
        }

        _objects[full] = new ObjectModel(full, name, isStruct, false, members.ToEquatableArray(), members.Count, node.String("description"));
        return reference;
    }

    /// <summary>The client's short name for a server type: its own name, or its full name run together where two would share one.</summary>
    private string ClientName(string server)
    {
        if (_clientNames.TryGetValue(server, out string? known)) return known;
        string bare = server;
        int generic = bare.IndexOf('<');
        string args = generic >= 0 ? bare.Substring(generic) : "";
        if (generic >= 0) bare = bare.Substring(0, generic);
        string name = ServiceEmitter.Pascal(bare.Substring(bare.LastIndexOf('.') + 1)) + (args.Length > 0 ? "Of" + ServiceEmitter.Pascal(args) : "");
        if (!_takenNames.Add(name))
        {
            name = ServiceEmitter.Pascal(server.Replace('.', '_'));
            while (!_takenNames.Add(name)) name += "_";
        }

        _clientNames[server] = name;
        return name;
    }

    private static TypeModel? Builtin(string name)
    {
        (string full, string display, bool value)? t = name switch
        {
            "Boolean" => ("bool", "bool", true),
            "Byte" => ("byte", "byte", true),
            "SByte" => ("sbyte", "sbyte", true),
            "Int16" => ("short", "short", true),
            "UInt16" => ("ushort", "ushort", true),
            "Int32" => ("int", "int", true),
            "UInt32" => ("uint", "uint", true),
            "Int64" => ("long", "long", true),
            "UInt64" => ("ulong", "ulong", true),
            "Single" => ("float", "float", true),
            "Double" => ("double", "double", true),
            "Decimal" => ("decimal", "decimal", true),
            "Char" => ("char", "char", true),
            "String" => ("string", "string", false),
            "Object" => ("object", "object", false),
            "DateTime" => ("global::System.DateTime", "DateTime", true),
            "DateTimeOffset" => ("global::System.DateTimeOffset", "DateTimeOffset", true),
            "TimeSpan" => ("global::System.TimeSpan", "TimeSpan", true),
            "Guid" => ("global::System.Guid", "Guid", true),
            "DateOnly" => ("global::System.DateOnly", "DateOnly", true),
            "TimeOnly" => ("global::System.TimeOnly", "TimeOnly", true),
            "Half" => ("global::System.Half", "Half", true),
            "Int128" => ("global::System.Int128", "Int128", true),
            "UInt128" => ("global::System.UInt128", "UInt128", true),
            "BigInteger" => ("global::System.Numerics.BigInteger", "BigInteger", true),
            "Uri" => ("global::System.Uri", "Uri", false),
            "Version" => ("global::System.Version", "Version", false),
            "ReadOnlyByteMemory" => ("global::System.ReadOnlyMemory<byte>", "ReadOnlyMemory<byte>", true),
            "ByteMemory" => ("global::System.Memory<byte>", "Memory<byte>", true),
            "JsonElement" => ("global::System.Text.Json.JsonElement", "JsonElement", true),
            "DataFrame" => ("global::IpyRpc.DataFrame", "DataFrame", false),
            _ => null,
        };
        if (t is null && Element(name) is { } element)
        {
            if (name.EndsWith("Array2D", StringComparison.Ordinal)) t = (element + "[,]", element + "[,]", false);
            else if (name.EndsWith("Array3D", StringComparison.Ordinal)) t = (element + "[,,]", element + "[,,]", false);
            else if (name.EndsWith("Tensor", StringComparison.Ordinal)) t = ($"global::System.Numerics.Tensors.Tensor<{element}>", $"Tensor<{element}>", false);
            else if (name.EndsWith("Array", StringComparison.Ordinal)) t = (element + "[]", element + "[]", false);
        }

        return t is { } x ? new TypeModel(TypeKind.Builtin, x.full, x.display, x.value, name, EquatableArray<TypeModel>.Empty, null, null) : null;
    }

    // The element type of a built-in array or tensor formatter's name (DoubleArray2D → double).
    private static string? Element(string name)
    {
        foreach (string suffix in new[] { "Array2D", "Array3D", "Tensor", "Array" })
        {
            if (!name.EndsWith(suffix, StringComparison.Ordinal)) continue;
            string element = name.Substring(0, name.Length - suffix.Length);
            return element switch
            {
                "Double" => "double", "Single" => "float", "Int32" => "int", "Int64" => "long", "Int16" => "short",
                "UInt16" => "ushort", "UInt32" => "uint", "UInt64" => "ulong", "SByte" => "sbyte", "Byte" => "byte",
                _ => null,
            };
        }

        return null;
    }

    /// <summary>The server's default as C# for the client's parameter, or null when it cannot be written (the parameter is then required).</summary>
    private static string? DefaultExpression(TypeModel type, string text)
    {
        TypeModel target = type.Kind == TypeKind.Nullable ? type.Arguments[0] : type;
        if (target.Kind == TypeKind.Enum)
        {
            string member = text.Substring(text.LastIndexOf('.') + 1);
            if (target.EnumMembers.FirstOrDefault(m => m.Name == member) is { } m) return $"{target.FullName}.{m.Name}";
            var cast = Regex.Match(text, @"^\([A-Za-z_][A-Za-z0-9_.]*\)(-?[0-9]+)$");
            if (cast.Success) return $"({target.FullName}){cast.Groups[1].Value}";
            return text == "null" && type.Kind == TypeKind.Nullable ? "null" : null;
        }

        if (text is "null" or "default" or "true" or "false") return text;
        if (Regex.IsMatch(text, @"^-?[0-9][0-9.]*([eE][-+]?[0-9]+)?[a-zA-Z]{0,2}$")) return text;
        if (Regex.IsMatch(text, "^\"([^\"\\\\\\r\\n]|\\\\.)*\"$") || Regex.IsMatch(text, "^'([^'\\\\]|\\\\.[0-9a-fA-F]*)'$")) return text;
        return null;
    }

    private static string Element(string name, string text) => $"<{name}>{Escape(text)}</{name}>";

    private static string Escape(string text)
        => string.Join("\n<para/>\n", text.Replace("\r", "").Split(new[] { "\n\n" }, StringSplitOptions.None)
            .Select(p => System.Security.SecurityElement.Escape(p)!.Replace("\n", " ")));

    // A parameter may be named like a keyword: the proxy writes it with '@'.
    private static bool IsName(string name) => name.Length > 0 && (char.IsLetter(name[0]) || name[0] == '_') && name.All(c => char.IsLetterOrDigit(c) || c == '_');

    private static bool IsIdentifier(string name)
        => name.Length > 0 && (char.IsLetter(name[0]) || name[0] == '_') && name.All(c => char.IsLetterOrDigit(c) || c == '_')
            && Microsoft.CodeAnalysis.CSharp.SyntaxFacts.GetKeywordKind(name) == Microsoft.CodeAnalysis.CSharp.SyntaxKind.None;

    private static string Hint(string fullName) => fullName.Replace('.', '_');

    private LocationInfo Location(JsonNode node) => At(_path, _text, node.Position);

    private static DiagnosticInfo Problem(string path, string text, int position, string message)
        => new(Diagnostics.SchemaUnreadable, At(path, text, position), new[] { System.IO.Path.GetFileName(path), message }.ToEquatableArray());

    private static LocationInfo At(string path, string text, int position)
    {
        position = Math.Max(0, Math.Min(position, text.Length));
        int line = 0, column = 0;
        for (int i = 0; i < position; i++)
        {
            if (text[i] == '\n')
            {
                line++;
                column = 0;
            }
            else
            {
                column++;
            }
        }

        var start = new LinePosition(line, column);
        return new LocationInfo(path, new TextSpan(position, 0), new LinePositionSpan(start, start));
    }
}
