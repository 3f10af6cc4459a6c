using System.Collections.Generic;
using System.Linq;
using System.Text;
using IpyRpc.Generators.Model;

namespace IpyRpc.Generators.Emit;

/// <summary>JSON Schemas of parameter and return types, written at compile time into descriptors (OpenRPC uses them).</summary>
internal static class JsonSchema
{
    private const int MaxDepth = 4;

    public static string Of(TypeModel type, EquatableArray<ObjectModel> objects)
    {
        var map = new Dictionary<string, ObjectModel>();
        foreach (ObjectModel o in objects) map[o.FullName] = o;
        var text = new StringBuilder();
        Write(type, map, text, 0);
        return text.ToString();
    }

    private static void Write(TypeModel type, Dictionary<string, ObjectModel> objects, StringBuilder text, int depth)
    {
        switch (type.Kind)
        {
            case TypeKind.Builtin:
                text.Append(Builtin(type.Builtin!));
                return;
            case TypeKind.Enum:
                text.Append("{\"type\":\"string\",\"title\":").Append(Quote(type.Display)).Append('}');
                return;
            case TypeKind.Nullable:
                text.Append("{\"anyOf\":[");
                Write(type.Arguments[0], objects, text, depth + 1);
                text.Append(",{\"type\":\"null\"}]}");
                return;
            case TypeKind.Sequence:
                text.Append("{\"type\":\"array\",\"items\":");
                Write(type.Arguments[0], objects, text, depth + 1);
                text.Append('}');
                return;
            case TypeKind.Dictionary:
                text.Append("{\"type\":\"object\",\"additionalProperties\":");
                Write(type.Arguments[0], objects, text, depth + 1);
                text.Append('}');
                return;
            case TypeKind.Tuple:
                text.Append("{\"type\":\"array\"");
                if (objects.TryGetValue(type.FullName, out ObjectModel? tuple) && depth < MaxDepth)
                {
                    text.Append(",\"prefixItems\":[");
                    bool first = true;
                    foreach (MemberModel m in tuple.Members)
                    {
                        if (!first) text.Append(',');
                        first = false;
                        Write(m.Type, objects, text, depth + 1);
                    }

                    text.Append("],\"minItems\":").Append(tuple.Members.Count).Append(",\"maxItems\":").Append(tuple.Members.Count);
                }

                text.Append('}');
                return;
            case TypeKind.Object:
                text.Append("{\"type\":\"object\",\"title\":").Append(Quote(type.Display));
                if (objects.TryGetValue(type.FullName, out ObjectModel? o) && depth < MaxDepth)
                {
                    text.Append(",\"properties\":{");
                    bool first = true;
                    foreach (MemberModel m in o.Members)
                    {
                        if (!first) text.Append(',');
                        first = false;
                        text.Append(Quote(m.WireName)).Append(':');
                        Write(m.Type, objects, text, depth + 1);
                    }

                    text.Append('}');
                }

                text.Append('}');
                return;
        }
    }

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
        "Object" => "{}",
        "DataFrame" => "{\"type\":\"object\",\"title\":\"pandas\",\"properties\":{\"type\":{\"const\":\"pandas\"},\"data\":{\"type\":\"object\",\"properties\":{\"row_index\":{\"type\":\"object\"},\"columns\":{\"type\":\"array\",\"items\":{\"type\":\"string\"}},\"dtypes\":{\"type\":\"array\",\"items\":{\"type\":\"string\"}},\"data\":{\"type\":\"array\"}}}}}",
        "DoubleArray" or "SingleArray" => "{\"type\":\"array\",\"items\":{\"type\":\"number\"}}",
        _ when name.EndsWith("Array2D") || name.EndsWith("Array3D") || name.EndsWith("Tensor") => "{\"type\":\"object\",\"title\":\"ndarray\",\"properties\":{\"dtype\":{\"type\":\"string\"},\"shape\":{\"type\":\"array\",\"items\":{\"type\":\"integer\"}},\"data\":{\"type\":\"array\"}}}",
        _ when name.EndsWith("Array") => "{\"type\":\"array\",\"items\":{\"type\":\"integer\"}}",
        _ => "{}",
    };

    private static string Quote(string s) => "\"" + s.Replace("\\", "\\\\").Replace("\"", "\\\"") + "\"";
}
