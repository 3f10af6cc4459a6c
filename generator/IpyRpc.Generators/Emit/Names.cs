using System.Linq;
using System.Text;
using IpyRpc.Generators.Model;
using Microsoft.CodeAnalysis.CSharp;

namespace IpyRpc.Generators.Emit;

/// <summary>Names of generated members and C# literals, derived deterministically from the models.</summary>
internal static class Names
{
    public const string Runtime = "__IpyRpc";
    // The formatter file's own aliases (FormatterEmitter.Aliases).
    public const string Formatting = "__Formatting";

    /// <summary>The built-in formatters (IpyRpc.Formatting.Formatters), by the alias every generated file declares.</summary>
    public const string Builtin = "__Builtin";

    public const string Tasks = "__Tasks";

    public const string CancellationToken = "__CancellationToken";
    public const string MessagePack = "__MessagePack";
    public const string Json = "__Json";

    /// <summary>The class holding this assembly's generated formatters (a compilation has one), by the alias <see cref="Aliases"/> declares.</summary>
    public const string Holder = "__Formatters";

    public static string HolderName(string assemblyKey) => "Formatters_" + assemblyKey;

    /// <summary>The class holding this assembly's JSON Schemas, by the alias <see cref="Aliases"/> declares.</summary>
    public const string Schemas = "__Schemas";

    /// <summary>The aliases of this assembly's formatter and schema holders that <paramref name="code"/> refers to (each holder exists only when something needs it).</summary>
    public static string Aliases(string assemblyKey, string code)
        => (code.Contains(Holder + ".") ? $"using {Holder} = global::IpyRpc.Generated.{HolderName(assemblyKey)};\n" : "")
            + (code.Contains(Schemas + ".") ? $"using {Schemas} = global::IpyRpc.Generated.{SchemasName(assemblyKey)};\n" : "");

    public static string SchemasName(string assemblyKey) => "Schemas_" + assemblyKey;

    /// <summary>An identifier-safe form of an assembly name.</summary>
    public static string AssemblyKey(string? assemblyName) => Identifier(assemblyName ?? "Assembly");

    /// <summary>The field that holds a type's formatter.</summary>
    public static string Field(TypeModel type)
    {
        string name = type.FullName.Replace("global::", "").Replace("System.Collections.Generic.", "");
        var text = new StringBuilder();
        foreach (char c in name)
        {
            switch (c)
            {
                case '?': text.Append("_Nullable"); break;
                case '[': text.Append("_Array"); break;
                case ']': break;
                case '<': text.Append("_Of_"); break;
                case '(': text.Append("Tuple_"); break;
                default: text.Append(char.IsLetterOrDigit(c) ? c : '_'); break;
            }
        }

        return Identifier(text.ToString());
    }

    /// <summary>The expression for a type's formatter, from generated code outside the holder.</summary>
    public static string Formatter(TypeModel type)
        => type.Kind == TypeKind.Builtin ? Builtin + "." + type.Builtin : Holder + "." + Field(type);

    /// <summary>The expression for a type's formatter from inside the holder.</summary>
    public static string LocalFormatter(TypeModel type)
        => type.Kind == TypeKind.Builtin ? Builtin + "." + type.Builtin : Field(type);

    /// <summary>The formatted type as IpyRpcFormatter's type argument: reference types are nullable.</summary>
    public static string FormatterArgument(TypeModel type) => type.IsValueType ? type.FullName : type.FullName + "?";

    /// <summary>A parameter's name as an identifier: with <c>@</c> when it is a keyword (<c>@class</c>).</summary>
    public static string Id(string name) => SyntaxFacts.GetKeywordKind(name) == SyntaxKind.None ? name : "@" + name;

    public static string Literal(string? value) => value is null ? "null" : SymbolDisplay.FormatLiteral(value, quote: true);

    public static string Utf8(string value) => SymbolDisplay.FormatLiteral(value, quote: true) + "u8";

    private static string Identifier(string name)
    {
        var text = new StringBuilder();
        bool underscore = false;
        foreach (char c in name)
        {
            char ch = char.IsLetterOrDigit(c) ? c : '_';
            if (ch == '_' && underscore) continue;
            underscore = ch == '_';
            text.Append(ch);
        }

        string result = text.ToString().Trim('_');
        return result.Length == 0 || char.IsDigit(result[0]) ? "_" + result : result;
    }
}
