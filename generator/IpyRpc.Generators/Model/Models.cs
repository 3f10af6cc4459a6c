using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.Text;

namespace IpyRpc.Generators.Model;

/// <summary>How a type is serialized; decides which formatter the emitters compose.</summary>
internal enum TypeKind
{
    /// <summary>A formatter in IpyRpc.Formatting.Formatters (primitives, string, byte[], numeric arrays, Guid, dates, object).</summary>
    Builtin,
    /// <summary>An enum: EnumFormatter with casts.</summary>
    Enum,
    /// <summary>Nullable&lt;T&gt; of a value type.</summary>
    Nullable,
    /// <summary>Arrays, lists and read-only lists: SequenceFormatter.</summary>
    Sequence,
    /// <summary>Dictionaries with string keys: DictionaryFormatter.</summary>
    Dictionary,
    /// <summary>A user class, record or struct: a generated formatter over its members.</summary>
    Object,
    /// <summary>A value tuple or System.Tuple: a generated formatter writing an array.</summary>
    Tuple,
    /// <summary>A type with a formatter of the user's own ([IpyRpcFormatter]): <see cref="TypeModel.Create"/> names the formatter class.</summary>
    Custom,
}

/// <summary>
/// A serializable type as the emitters need it. Composite kinds hold their element types;
/// objects and tuples are referred to by name and described once in <see cref="ObjectModel"/>.
/// </summary>
internal sealed record TypeModel(
    TypeKind Kind,
    string FullName,
    string Display,
    bool IsValueType,
    string? Builtin,
    EquatableArray<TypeModel> Arguments,
    string? Create,
    string? EnumUnderlying,
    EquatableArray<EnumMemberModel> EnumMembers = default,
    string? Doc = null,
    bool EnumFlags = false);

/// <summary>A named value of an enum, with its doc summary (schemas and schema-generated clients show them).</summary>
internal sealed record EnumMemberModel(string Name, string Value, string? Doc);

/// <summary>One member of a user type.</summary>
/// <see cref="Required"/>: a constructor parameter without a default whose type does not allow null; a
/// value that lacks it is refused when read (the caller gets invalid_arguments, not a null inside the function).
internal sealed record MemberModel(string Name, string WireName, TypeModel Type, bool Settable, bool InitOnly, int ConstructorIndex, bool Required = false, string? Doc = null);

/// <summary>A user type (or tuple) with its members and how to construct it.</summary>
/// <see cref="Doc"/> is the type's doc summary (schemas carry it to clients generated from them).
internal sealed record ObjectModel(string FullName, string Display, bool IsValueType, bool IsTuple, EquatableArray<MemberModel> Members, int ConstructorArity, string? Doc = null);

/// <summary>
/// A method parameter. <see cref="FilledBy"/> names what the call fills it with when it is not an
/// argument at all (a <c>CancellationToken</c>, the <c>IpyRpcConnection</c>): such parameters are
/// neither described nor part of the proxy.
/// </summary>
/// A parameter of type <c>IProgress&lt;T&gt;</c> has <see cref="IsProgress"/>, <see cref="Type"/> T and is filled
/// by the call on the server; the proxy takes it as an optional <c>IProgress&lt;T&gt;?</c>.
/// A <c>params T[]</c> parameter has <see cref="ParamsEmpty"/>: the empty array it takes when no argument is gathered into it.
internal sealed record ParameterModel(string Name, TypeModel? Type, string? FilledBy, string? DefaultExpression, string? Doc, string Display, string Source, bool IsProgress = false, string? DefaultDisplay = null, string? ParamsEmpty = null)
{
    /// <summary>Whether the caller passes it (it is not filled by the call).</summary>
    public bool IsArgument => FilledBy is null;
}

/// <summary>How a method returns.</summary>
internal enum ReturnKind
{
    Void,
    Value,
    Task,
    TaskOfT,
    ValueTask,
    ValueTaskOfT,
    /// <summary><c>IAsyncEnumerable&lt;T&gt;</c>: items stream to the caller; <see cref="FunctionModel.ReturnType"/> is T.</summary>
    Stream,
}

/// <summary>The parsed XML documentation of a method.</summary>
internal sealed record DocModel(
    string? Summary,
    string? Remarks,
    string? Returns,
    EquatableArray<DocEntry> Params,
    EquatableArray<DocEntry> Exceptions,
    EquatableArray<DocEntry> RawElements);

/// <summary>A named doc entry: a parameter's or an exception's text (or, in RawElements, an element's name and its XML).</summary>
internal sealed record DocEntry(string Name, string Text);

/// <summary>An exported method: everything every emitter needs, as values.</summary>
internal sealed record FunctionModel(
    string ExportName,
    string MethodName,
    ServiceKey Service,
    bool IsStatic,
    ReturnKind ReturnKind,
    TypeModel? ReturnType,
    string ReturnDisplay,
    string ReturnSource,
    EquatableArray<ParameterModel> Parameters,
    DocModel Docs,
    EquatableArray<ObjectModel> Objects,
    SchemaCheck? Check = null);

/// <summary>What a proxy generated from a schema file checks before calling (<c>SchemaGuard</c>): the server's function still has this fingerprint.</summary>
internal sealed record SchemaCheck(string Fingerprint, string Signature, string File);

/// <summary>The type that declares exported methods (<see cref="IsContract"/>: an [IpyRpcContract] interface, called through an implementation).</summary>
internal sealed record ServiceKey(
    string Namespace,
    string FullName,
    string Name,
    string HintName,
    string ContainingPath,
    bool IsPublic,
    bool IsStatic,
    bool HasParameterlessConstructor,
    bool IsContract = false,
    bool HasStaticAbstractMembers = false,
    string? SchemaFile = null);

/// <summary>
/// A client generated from a schema file (<see cref="ServiceKey.SchemaFile"/> names it): the proxy's functions,
/// and the records and enums they use, declared in the client's namespace.
/// </summary>
internal sealed record SchemaModel(ServiceKey Key, EquatableArray<FunctionModel> Functions, EquatableArray<ObjectModel> Records, EquatableArray<TypeModel> Enums, EquatableArray<EventModel> Events, string EventsClass);

/// <summary>What reading one schema file produced.</summary>
internal sealed record SchemaResult(SchemaModel? Model, EquatableArray<DiagnosticInfo> Diagnostics);

/// <summary>An [IpyRpcEvent] member: a static <c>IpyRpcEvent&lt;T&gt;</c> field or property.</summary>
internal sealed record EventModel(
    string EventName,
    string MemberName,
    ServiceKey Service,
    TypeModel Payload,
    string PayloadDisplay,
    string? Summary,
    string? Remarks,
    EquatableArray<ObjectModel> Objects,
    SchemaCheck? Check = null);

/// <summary>What parsing one [IpyRpcEvent] member produced.</summary>
internal sealed record EventResult(EventModel? Model, EquatableArray<DiagnosticInfo> Diagnostics);

/// <summary>All exported methods and declared events of one type.</summary>
internal sealed record ServiceModel(ServiceKey Key, string AssemblyKey, EquatableArray<FunctionModel> Functions, EquatableArray<EventModel> Events);

/// <summary>A config pattern written in source (an indexer key of a GlobConfig initializer).</summary>
internal sealed record ConfigPattern(string Pattern, LocationInfo? Location);

/// <summary>A location without the syntax tree, so models stay equatable.</summary>
internal sealed record LocationInfo(string FilePath, TextSpan Span, LinePositionSpan LineSpan)
{
    public Location ToLocation() => Location.Create(FilePath, Span, LineSpan);

    public static LocationInfo? From(Location? location)
        => location?.SourceTree is null ? null : new LocationInfo(location.SourceTree.FilePath, location.SourceSpan, location.GetLineSpan().Span);
}

/// <summary>A diagnostic to report, as values.</summary>
internal sealed record DiagnosticInfo(string Id, LocationInfo? Location, EquatableArray<string> Arguments)
{
    public static DiagnosticInfo Create(string id, Location? location, params string[] arguments)
        => new(id, LocationInfo.From(location), arguments.ToEquatableArray());
}

/// <summary>What parsing one method produced: a model, diagnostics, or both.</summary>
/// <remarks>
/// The model carries no source location, so edits that only move a method (a comment above it, a
/// using added) leave the emitters' inputs equal and nothing is generated again; the location travels
/// beside it, for diagnostics only.
/// </remarks>
internal sealed record FunctionResult(FunctionModel? Model, EquatableArray<DiagnosticInfo> Diagnostics, LocationInfo? Location = null);

/// <summary>Where an exported name is declared: what the duplicate-name diagnostic needs, apart from the models.</summary>
internal sealed record FunctionSite(string ExportName, string Service, string Declaration, LocationInfo? Location);
