using System.Collections.Generic;
using System.Linq;
using System.Runtime.CompilerServices;
using System.Text;
using IpyRpc.Generators.Model;

namespace IpyRpc.Generators.Emit;

/// <summary>
/// JSON Schemas of parameter and return types, written at compile time into descriptors (OpenRPC uses them).
/// Each node also says how IpyRpc carries the value (<c>x-ipyrpc</c>: a built-in formatter's name, or
/// <c>enum</c>, <c>nullable</c>, <c>list</c>, <c>map</c>, <c>tuple</c>, <c>object</c>), and user types carry their C#
/// names, members and docs, so a client generated from the schema alone (docs/SCHEMA.md) reads and writes the
/// same bytes. A type that contains itself is written in full once and by name where it recurs.
/// </summary>
internal static class JsonSchema
{
    /// <summary>The schema of each parameter, of the progress reports and of the result (as descriptors carry it: a stream's is an array of its items).</summary>
    public static IEnumerable<string> Of(FunctionModel f)
    {
        foreach (ParameterModel p in f.Parameters)
        {
            if (p.IsArgument || p.IsProgress) yield return Of(p.Type!, f.Objects);
        }

        if (ReturnOf(f) is { } result) yield return result;
    }

    public static string? ReturnOf(FunctionModel f)
    {
        string? schema = f.ReturnType is null ? null : Of(f.ReturnType, f.Objects);
        return f.ReturnKind == ReturnKind.Stream ? "{\"type\":\"array\",\"items\":" + schema + "}" : schema;
    }

    /// <summary>
    /// The expression for a schema in generated code: a constant of the assembly's schema class, named by the
    /// schema's hash, so a schema used by many functions (every <c>int</c>, a record taken by ten methods) is written once.
    /// </summary>
    public static string Reference(string schema) => Names.Schemas + "." + ConstantName(schema);

    // 48 bits of the schema's hash: distinct schemas in one assembly collide with a chance of about n² / 2^49.
    private static string ConstantName(string schema) => Named.GetValue(schema, static text => "S_" + Fingerprint.Hash(text).Substring(0, 12));

    /// <summary>The class holding every distinct schema of the assembly's functions and events.</summary>
    public static string? Emit(IReadOnlyList<FunctionModel> functions, IReadOnlyList<EventModel> events, string assemblyKey)
    {
        var all = new SortedDictionary<string, string>(System.StringComparer.Ordinal);
        foreach (FunctionModel f in functions)
        {
            foreach (string schema in Of(f)) all[ConstantName(schema)] = schema;
        }

        foreach (EventModel e in events)
        {
            string schema = Of(e.Payload, e.Objects);
            all[ConstantName(schema)] = schema;
        }

        if (all.Count == 0) return null;
        string constants = string.Join("\n", all.Select(s => $"internal const string {s.Key} = {Names.Literal(s.Value)};"));
        var w = new CodeWriter();
        w.Line(CodeWriter.Header);
        w.Namespace("IpyRpc.Generated");
        w.Block($$"""
            /// <summary>The JSON Schemas of this assembly's functions and events, each written once; descriptors refer to them.</summary>
            {{CodeWriter.GeneratedCode}}
            internal static class {{Names.SchemasName(assemblyKey)}}
            {
            {{CodeWriter.Indent(constants, 4)}}
            }
            """);
        return w.ToString();
    }

    // A type's schema is the same wherever it is used (a compilation analyzes each type once, into one model):
    // written once per model, and named once per schema, however many parameters share it.
    private static readonly ConditionalWeakTable<TypeModel, string> Written = new();
    private static readonly ConditionalWeakTable<string, string> Named = new();

    public static string Of(TypeModel type, EquatableArray<ObjectModel> objects)
        => Written.GetValue(type, t => Write(t, objects));

    private static string Write(TypeModel type, EquatableArray<ObjectModel> objects)
    {
        var map = new Dictionary<string, ObjectModel>();
        foreach (ObjectModel o in objects) map[o.FullName] = o;
        var text = new StringBuilder();
        Write(type, map, text, new HashSet<string>());
        return text.ToString();
    }

    private static void Write(TypeModel type, Dictionary<string, ObjectModel> objects, StringBuilder text, HashSet<string> path)
    {
        switch (type.Kind)
        {
            case TypeKind.Builtin:
                string builtin = Builtin(type.Builtin!);
                text.Append(builtin, 0, builtin.Length - 1).Append(builtin.Length > 2 ? "," : "").Append("\"x-ipyrpc\":").Append(Quote(type.Builtin!));
                break;
            case TypeKind.Enum:
                // A [Flags] enum's value is a member's name or a number combining members' bits.
                text.Append(type.EnumFlags ? "{\"type\":[\"string\",\"integer\"]" : "{\"type\":\"string\"").Append(",\"title\":").Append(Quote(type.Display)).Append(",\"x-ipyrpc\":\"enum\",\"x-csharp-full-name\":").Append(Quote(CSharpName(type.FullName)));
                if (type.Doc is not null) text.Append(",\"description\":").Append(Quote(type.Doc));
                if (type.EnumUnderlying is { } underlying && underlying != "int") text.Append(",\"x-enum-underlying\":").Append(Quote(underlying));
                if (type.EnumFlags) text.Append(",\"x-enum-flags\":true");
                text.Append(type.EnumFlags ? ",\"x-enum-names\":[" : ",\"enum\":[").Append(string.Join(",", type.EnumMembers.Select(m => Quote(m.Name)))).Append(']');
                text.Append(",\"x-enum-values\":[").Append(string.Join(",", type.EnumMembers.Select(m => m.Value))).Append(']');
                if (type.EnumMembers.Any(m => m.Doc is not null))
                {
                    text.Append(",\"x-enum-descriptions\":[").Append(string.Join(",", type.EnumMembers.Select(m => Quote(m.Doc ?? "")))).Append(']');
                }

                break;
            case TypeKind.Nullable:
                text.Append("{\"anyOf\":[");
                Write(type.Arguments[0], objects, text, path);
                text.Append(",{\"type\":\"null\"}],\"x-ipyrpc\":\"nullable\"");
                break;
            case TypeKind.Sequence:
                text.Append("{\"type\":\"array\",\"items\":");
                Write(type.Arguments[0], objects, text, path);
                text.Append(",\"x-ipyrpc\":\"list\"");
                break;
            case TypeKind.Dictionary:
                text.Append("{\"type\":\"object\",\"additionalProperties\":");
                Write(type.Arguments[0], objects, text, path);
                text.Append(",\"x-ipyrpc\":\"map\"");
                if (type.Arguments.Count > 1)
                {
                    // Keys that are not strings: JSON keys are their text (an integer's digits, an enum's member name, a GUID, a date).
                    TypeModel key = type.Arguments[1];
                    text.Append(",\"propertyNames\":");
                    if (key.Kind == TypeKind.Enum && key.EnumFlags) text.Append("{\"anyOf\":[{\"enum\":[").Append(string.Join(",", key.EnumMembers.Select(m => Quote(m.Name)))).Append("]},{\"pattern\":\"^-?[0-9]+$\"}]}");
                    else if (key.Kind == TypeKind.Enum) text.Append("{\"enum\":[").Append(string.Join(",", key.EnumMembers.Select(m => Quote(m.Name)))).Append("]}");
                    else if (key.Builtin == "Guid") text.Append("{\"format\":\"uuid\"}");
                    else if (key.Builtin == "DateOnly") text.Append("{\"format\":\"date\"}");
                    else if (key.Builtin == "DateTime") text.Append("{\"format\":\"date-time\"}");
                    else text.Append(key.Builtin!.StartsWith("U", System.StringComparison.Ordinal) || key.Builtin == "Byte" ? "{\"pattern\":\"^[0-9]+$\"}" : "{\"pattern\":\"^-?[0-9]+$\"}");
                    text.Append(",\"x-ipyrpc-key\":");
                    Write(key, objects, text, path);
                }
                break;
            case TypeKind.Tuple:
                text.Append("{\"type\":\"array\",\"x-ipyrpc\":\"tuple\"");
                if (objects.TryGetValue(type.FullName, out ObjectModel? tuple))
                {
                    text.Append(",\"prefixItems\":[");
                    bool first = true;
                    foreach (MemberModel m in tuple.Members)
                    {
                        if (!first) text.Append(',');
                        first = false;
                        Write(m.Type, objects, text, path);
                    }

                    text.Append("],\"minItems\":").Append(tuple.Members.Count).Append(",\"maxItems\":").Append(tuple.Members.Count);
                }

                break;
            case TypeKind.Custom:
                // Its format is the user's formatter's: any JSON value, named for people and for clients with the type.
                text.Append("{\"title\":").Append(Quote(type.Display)).Append(",\"x-ipyrpc\":\"custom\",\"x-csharp-full-name\":").Append(Quote(CSharpName(type.FullName)));
                if (type.Doc is not null) text.Append(",\"description\":").Append(Quote(type.Doc));
                break;
            case TypeKind.Object:
                text.Append("{\"type\":\"object\",\"title\":").Append(Quote(type.Display)).Append(",\"x-ipyrpc\":\"object\",\"x-csharp-full-name\":").Append(Quote(CSharpName(type.FullName)));
                if (type.IsValueType) text.Append(",\"x-csharp-struct\":true");
                // Where the type recurs inside itself, its name alone refers to the definition above.
                if (objects.TryGetValue(type.FullName, out ObjectModel? o) && path.Add(type.FullName))
                {
                    if (o.Doc is not null) text.Append(",\"description\":").Append(Quote(o.Doc));
                    text.Append(",\"properties\":{");
                    bool first = true;
                    foreach (MemberModel m in o.Members)
                    {
                        if (!first) text.Append(',');
                        first = false;
                        text.Append(Quote(m.WireName)).Append(':');
                        WriteMember(m, objects, text, path);
                    }

                    text.Append('}');
                    if (o.Members.Any(m => m.Required)) text.Append(",\"required\":[").Append(string.Join(",", o.Members.Where(m => m.Required).Select(m => Quote(m.WireName)))).Append(']');
                    path.Remove(type.FullName);
                }

                break;
        }

        text.Append('}');
    }

    // A member's node: its type's schema with the member's C# name and doc (wrapped when the type has a doc of its own).
    private static void WriteMember(MemberModel m, Dictionary<string, ObjectModel> objects, StringBuilder text, HashSet<string> path)
    {
        // An object or enum node carries its type's description; a documented member of such a type wraps it, so neither doc is lost.
        if (m.Doc is not null && m.Type.Kind is TypeKind.Object or TypeKind.Enum or TypeKind.Custom)
        {
            text.Append("{\"allOf\":[");
            Write(m.Type, objects, text, path);
            text.Append("],\"description\":").Append(Quote(m.Doc)).Append(",\"x-csharp-name\":").Append(Quote(m.Name)).Append('}');
            return;
        }

        int at = text.Length;
        Write(m.Type, objects, text, path);
        // Reopen the node just written to add the member's name (and doc) before its closing brace.
        text.Length--;
        if (text.Length > at + 1) text.Append(',');
        text.Append("\"x-csharp-name\":").Append(Quote(m.Name));
        if (m.Doc is not null) text.Append(",\"description\":").Append(Quote(m.Doc));
        if (m.ConstructorIndex == -2) text.Append(",\"readOnly\":true");
        text.Append('}');
    }

    private static string CSharpName(string fullName) => fullName.Replace("global::", "");

    private static string Builtin(string name) => name switch
    {
        "Boolean" => "{\"type\":\"boolean\"}",
        "Byte" or "SByte" or "Int16" or "UInt16" => "{\"type\":\"integer\"}",
        "Int32" or "UInt32" => "{\"type\":\"integer\",\"format\":\"int32\"}",
        "Int64" or "UInt64" => "{\"type\":\"integer\",\"format\":\"int64\"}",
        "Single" => "{\"type\":\"number\",\"format\":\"float\"}",
        "Double" => "{\"type\":\"number\",\"format\":\"double\"}",
        "Decimal" => "{\"type\":\"number\"}",
        "Char" => "{\"type\":\"string\",\"minLength\":1,\"maxLength\":1}",
        "String" => "{\"type\":\"string\"}",
        "ByteArray" => "{\"type\":\"string\",\"contentEncoding\":\"base64\"}",
        "Guid" => "{\"type\":\"string\",\"format\":\"uuid\"}",
        "DateTime" or "DateTimeOffset" => "{\"type\":\"string\",\"format\":\"date-time\"}",
        "TimeSpan" => "{\"type\":\"string\",\"description\":\"[-][d.]hh:mm:ss[.fffffff]\"}",
        "DateOnly" => "{\"type\":\"string\",\"format\":\"date\"}",
        "TimeOnly" => "{\"type\":\"string\",\"description\":\"HH:mm:ss[.fffffff]\"}",
        "Half" => "{\"type\":\"number\"}",
        "Int128" or "UInt128" or "BigInteger" => "{\"type\":\"integer\"}",
        "Uri" => "{\"type\":\"string\",\"format\":\"uri-reference\"}",
        "Version" => "{\"type\":\"string\",\"description\":\"major.minor[.build[.revision]]\"}",
        "ReadOnlyByteMemory" or "ByteMemory" => "{\"type\":\"string\",\"contentEncoding\":\"base64\"}",
        "JsonElement" => "{}",
        "Object" => "{}",
        "DataFrame" => "{\"type\":\"object\",\"title\":\"pandas\",\"properties\":{\"type\":{\"const\":\"pandas\"},\"data\":{\"type\":\"object\",\"properties\":{\"row_index\":{\"type\":\"object\"},\"columns\":{\"type\":\"array\",\"items\":{\"type\":\"string\"}},\"dtypes\":{\"type\":\"array\",\"items\":{\"type\":\"string\"}},\"data\":{\"type\":\"array\"}}}}}",
        "DoubleArray" or "SingleArray" => "{\"type\":\"array\",\"items\":{\"type\":\"number\"}}",
        _ when name.EndsWith("Array2D") || name.EndsWith("Array3D") || name.EndsWith("Tensor") => "{\"type\":\"object\",\"title\":\"ndarray\",\"properties\":{\"dtype\":{\"type\":\"string\"},\"shape\":{\"type\":\"array\",\"items\":{\"type\":\"integer\"}},\"data\":{\"type\":\"array\"}}}",
        _ when name.EndsWith("Array") => "{\"type\":\"array\",\"items\":{\"type\":\"integer\"}}",
        _ => "{}",
    };

    private static string Quote(string s)
    {
        var text = new StringBuilder(s.Length + 2).Append('"');
        foreach (char c in s)
        {
            switch (c)
            {
                case '"': text.Append("\\\""); break;
                case '\\': text.Append("\\\\"); break;
                case '\n': text.Append("\\n"); break;
                case '\r': text.Append("\\r"); break;
                case '\t': text.Append("\\t"); break;
                default:
                    if (c < ' ') text.Append("\\u").Append(((int)c).ToString("x4"));
                    else text.Append(c);
                    break;
            }
        }

        return text.Append('"').ToString();
    }
}
