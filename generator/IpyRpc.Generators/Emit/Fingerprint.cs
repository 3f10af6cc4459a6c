using System.Collections.Generic;
using System.Linq;
using System.Text;
using IpyRpc.Generators.Model;

namespace IpyRpc.Generators.Emit;

/// <summary>
/// A function's wire signature reduced to a short hash: parameter names, which may be left out, and the
/// shapes of every type as they travel (member wire names and which are required, enum names, whether the
/// result streams). Docs and C# type names are not part of it: renaming a record or editing a comment changes
/// nothing on the wire. A client generated from a schema compares it with the server's before calling.
/// </summary>
internal static class Fingerprint
{
    public static string Of(FunctionModel f)
    {
        var objects = new Dictionary<string, ObjectModel>();
        foreach (ObjectModel o in f.Objects) objects[o.FullName] = o;
        var text = new StringBuilder();
        if (f.ReturnKind == ReturnKind.Stream) text.Append("stream ");
        text.Append('(');
        bool first = true;
        foreach (ParameterModel p in f.Parameters)
        {
            if (!p.IsArgument && !p.IsProgress) continue;
            if (!first) text.Append(',');
            first = false;
            if (p.IsProgress) text.Append("progress ");
            text.Append(p.Name).Append(':');
            Shape(p.Type!, objects, text, new HashSet<string>());
            if (p.DefaultExpression is not null) text.Append('=');
        }

        text.Append(")->");
        if (f.ReturnType is null) text.Append("void");
        else Shape(f.ReturnType, objects, text, new HashSet<string>());
        return Hash(text.ToString());
    }

    /// <summary>An event's payload shape, hashed the same way (a client generated from a schema compares it when it subscribes).</summary>
    public static string Of(EventModel e)
    {
        var objects = new Dictionary<string, ObjectModel>();
        foreach (ObjectModel o in e.Objects) objects[o.FullName] = o;
        var text = new StringBuilder("event ");
        Shape(e.Payload, objects, text, new HashSet<string>());
        return Hash(text.ToString());
    }

    private static void Shape(TypeModel type, Dictionary<string, ObjectModel> objects, StringBuilder text, HashSet<string> path)
    {
        switch (type.Kind)
        {
            case TypeKind.Builtin:
                text.Append(type.Builtin);
                return;
            case TypeKind.Custom:
                text.Append("custom(").Append(type.FullName).Append(')');
                return;
            case TypeKind.Enum:
                text.Append(type.EnumFlags ? "flags(" : "enum(").Append(string.Join("|", type.EnumMembers.Select(m => m.Name))).Append(')');
                return;
            case TypeKind.Nullable:
                Shape(type.Arguments[0], objects, text, path);
                text.Append('?');
                return;
            case TypeKind.Sequence:
                text.Append('[');
                Shape(type.Arguments[0], objects, text, path);
                text.Append(']');
                return;
            case TypeKind.Dictionary:
                if (type.Arguments.Count > 1)
                {
                    text.Append("{[");
                    Shape(type.Arguments[1], objects, text, path);
                    text.Append("]:");
                }
                else
                {
                    text.Append("{*:");
                }

                Shape(type.Arguments[0], objects, text, path);
                text.Append('}');
                return;
            case TypeKind.Tuple or TypeKind.Object:
                if (!objects.TryGetValue(type.FullName, out ObjectModel? o) || !path.Add(type.FullName))
                {
                    text.Append('^'); // recursion: the enclosing shape
                    return;
                }

                text.Append(type.Kind == TypeKind.Tuple ? '(' : '{');
                bool first = true;
                foreach (MemberModel m in o.Members.Where(m => m.ConstructorIndex != -2).OrderBy(m => type.Kind == TypeKind.Tuple ? m.ConstructorIndex.ToString("D3") : m.WireName, System.StringComparer.Ordinal))
                {
                    if (!first) text.Append(',');
                    first = false;
                    if (type.Kind == TypeKind.Object) text.Append(m.WireName).Append(m.Required ? "!:" : ":");
                    Shape(m.Type, objects, text, path);
                }

                text.Append(type.Kind == TypeKind.Tuple ? ')' : '}');
                path.Remove(type.FullName);
                return;
        }
    }

    // FNV-1a, 64 bits: stable across processes and runtimes (string.GetHashCode is not).
    public static string Hash(string text)
    {
        ulong hash = 14695981039346656037UL;
        foreach (byte b in Encoding.UTF8.GetBytes(text))
        {
            hash ^= b;
            hash *= 1099511628211UL;
        }

        return hash.ToString("x16");
    }
}
