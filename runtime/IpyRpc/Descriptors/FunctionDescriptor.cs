using System.Diagnostics.CodeAnalysis;

namespace IpyRpc;

/// <summary>
/// What a client sees of a remote function: its name, signature and the XML documentation of the
/// method it came from. The generator writes these at compile time; clients receive them on connect.
/// </summary>
public sealed record FunctionDescriptor
{
    /// <summary>An empty descriptor, to fill with an object initializer (<see cref="Name"/> is required).</summary>
    public FunctionDescriptor()
    {
    }

    /// <summary>A descriptor with its name, docs, return and parameters: the form generated dispatch writes.</summary>
    /// <param name="name">The exported name.</param>
    /// <param name="summary">The summary doc.</param>
    /// <param name="remarks">The remarks doc.</param>
    /// <param name="returns">The returns doc.</param>
    /// <param name="returnType">The C# return type as shown to people.</param>
    /// <param name="returnSchema">A JSON Schema of the return value.</param>
    /// <param name="fingerprint">The signature's fingerprint.</param>
    /// <param name="parameters">The parameters, in order.</param>
    [SetsRequiredMembers]
    public FunctionDescriptor(string name, string? summary, string? remarks, string? returns, string returnType, string? returnSchema, string? fingerprint, IReadOnlyList<ParameterDescriptor> parameters)
    {
        Name = name;
        Summary = summary;
        Remarks = remarks;
        Returns = returns;
        ReturnType = returnType;
        ReturnSchema = returnSchema;
        Fingerprint = fingerprint;
        Parameters = parameters;
    }

    /// <summary>The exported name.</summary>
    public required string Name { get; init; }

    /// <summary>The parameters, in order (a <see cref="CancellationToken"/> parameter is not one: the call fills it).</summary>
    public IReadOnlyList<ParameterDescriptor> Parameters { get; init; } = [];

    /// <summary>The C# return type as shown to people (<c>int</c>, <c>Report</c>; <c>void</c> when nothing is returned). Task wrappers are removed.</summary>
    public string ReturnType { get; init; } = "void";

    /// <summary>A JSON Schema of the return value, as JSON text.</summary>
    public string? ReturnSchema { get; init; }

    /// <summary>
    /// Whether the function streams its result (it returns <c>IAsyncEnumerable&lt;T&gt;</c>): items
    /// arrive in <c>items</c> messages before the result, which is then their count. <see cref="ReturnType"/>
    /// names the enumerable and <see cref="ReturnSchema"/> describes the items as an array.
    /// </summary>
    public bool IsStream { get; init; }

    /// <summary>The type a function's <see cref="IProgress{T}"/> parameter reports, when it has one (its reports arrive as <c>progress</c> messages).</summary>
    public string? ProgressType { get; init; }

    /// <summary>A JSON Schema of the values the function reports as progress, as JSON text (with <see cref="ProgressType"/>).</summary>
    public string? ProgressSchema { get; init; }

    /// <summary>
    /// A hash of the function's wire signature (parameter names, which are optional, and the shapes of the
    /// types as they travel; not docs or C# type names), written by the generator. A client generated from a
    /// schema file compares it with the one it was generated from and refuses a call whose signature changed
    /// (<see cref="SchemaMismatchException"/>). Null for functions registered without the generator.
    /// </summary>
    public string? Fingerprint { get; init; }

    /// <summary>
    /// The one serialization the function accepts its arguments in, when its config restricts it
    /// (<see cref="FunctionOptions.InputSerialization"/>); null when it takes either. A client that
    /// is not told otherwise (<see cref="CallOptions.Serialization"/>) calls it in this one.
    /// </summary>
    public Serialization? InputSerialization { get; init; }

    /// <summary>A fallback's stand-in: any arguments bind, and the handler reads them as plain data.</summary>
    internal bool TakesAnyArguments { get; init; }

    /// <summary>The <c>&lt;summary&gt;</c> of the doc comment.</summary>
    public string? Summary { get; init; }

    /// <summary>The <c>&lt;remarks&gt;</c>.</summary>
    public string? Remarks { get; init; }

    /// <summary>The <c>&lt;returns&gt;</c>.</summary>
    public string? Returns { get; init; }

    /// <summary>The documented exceptions (<c>&lt;exception cref="…"&gt;</c>).</summary>
    public IReadOnlyList<ExceptionDoc> Exceptions { get; init; } = [];

    /// <summary>The signature in a Python-like form: <c>add(a: int, b: int = 5) -&gt; int</c>; a <c>params</c> array is <c>*values: int[]</c>.</summary>
    public string Signature =>
        $"{Name}({string.Join(", ", Parameters.Select(p => p.IsParams ? $"*{p.Name}: {p.Type}" : p.DefaultValue is null ? $"{p.Name}: {p.Type}" : $"{p.Name}: {p.Type} = {p.DefaultValue}"))}) -> {ReturnType}";

    /// <summary>Readable help text, as Python's <c>help()</c> gives.</summary>
    public string Help()
    {
        var text = new System.Text.StringBuilder();
        text.AppendLine(Signature);
        if (Summary is not null) Indent(text, Summary, "    ").AppendLine();
        if (Remarks is not null) Indent(text, Remarks, "    ").AppendLine();
        if (Parameters.Count > 0)
        {
            text.AppendLine("    Parameters");
            foreach (ParameterDescriptor p in Parameters)
            {
                string head = $"      {p.Name} ({p.Type}{(p.DefaultValue is null ? "" : ", default " + p.DefaultValue)})";
                text.AppendLine(p.Doc is null ? head : $"{head}: {p.Doc}");
            }
        }

        if (ReturnType != "void" || Returns is not null)
        {
            text.AppendLine("    Returns");
            text.AppendLine(Returns is null ? $"      {ReturnType}" : $"      {ReturnType}: {Returns}");
        }

        if (InputSerialization is { } only)
        {
            text.AppendLine("    Accepts");
            text.AppendLine($"      {(only == Serialization.Json ? "JSON" : "MessagePack")} arguments only");
        }

        if (Exceptions.Count > 0)
        {
            text.AppendLine("    Raises");
            foreach (ExceptionDoc e in Exceptions) text.AppendLine($"      {e.Type}: {e.Description}");
        }

        return text.ToString().TrimEnd() + Environment.NewLine;
    }

    private static System.Text.StringBuilder Indent(System.Text.StringBuilder text, string body, string indent)
    {
        foreach (string line in body.Split('\n')) text.Append(indent).AppendLine(line.TrimEnd());
        return text;
    }
}

/// <summary>One parameter of a remote function.</summary>
public sealed record ParameterDescriptor
{
    /// <summary>An empty descriptor, to fill with an object initializer (<see cref="Name"/> and <see cref="Type"/> are required).</summary>
    public ParameterDescriptor()
    {
    }

    /// <summary>A parameter: optional exactly when it has a <paramref name="defaultValue"/> (the form generated dispatch writes).</summary>
    /// <param name="name">The parameter's name.</param>
    /// <param name="type">The C# type as shown to people.</param>
    /// <param name="schema">A JSON Schema of the parameter.</param>
    /// <param name="doc">The <c>&lt;param&gt;</c> documentation.</param>
    /// <param name="defaultValue">The default value as C# source text; <see langword="null"/> for a required parameter.</param>
    [SetsRequiredMembers]
    public ParameterDescriptor(string name, string type, string? schema, string? doc, string? defaultValue = null)
    {
        Name = name;
        Type = type;
        Schema = schema;
        Doc = doc;
        IsOptional = defaultValue is not null;
        DefaultValue = defaultValue;
    }

    /// <summary>The parameter's name (arguments may be passed by it).</summary>
    public required string Name { get; init; }

    /// <summary>The C# type as shown to people.</summary>
    public required string Type { get; init; }

    /// <summary>A JSON Schema of the parameter, as JSON text.</summary>
    public string? Schema { get; init; }

    /// <summary>The <c>&lt;param&gt;</c> documentation.</summary>
    public string? Doc { get; init; }

    /// <summary>Whether the parameter may be left out (it has a default value).</summary>
    public bool IsOptional { get; init; }

    /// <summary>The default value as C# source text (<c>5</c>, <c>"x"</c>, <c>null</c>), when optional.</summary>
    public string? DefaultValue { get; init; }

    /// <summary>
    /// Whether the parameter is a <c>params</c> array, last of all: positional arguments past the others are gathered
    /// into it (<c>concat("a", "b", "c")</c>), as are none (an empty array); one array in its place is taken as it is.
    /// </summary>
    public bool IsParams { get; init; }
}

/// <summary>An exception a function documents that it throws.</summary>
/// <param name="Type">The exception type's name.</param>
/// <param name="Description">When it is thrown.</param>
public sealed record ExceptionDoc(string Type, string Description);
