using System;
using System.Collections.Generic;
using System.Linq;
using IpyRpc.Generators.Model;
using Microsoft.CodeAnalysis;
using TypeKind = IpyRpc.Generators.Model.TypeKind;

namespace IpyRpc.Generators.Parse;

/// <summary>
/// Turns a type symbol into a <see cref="TypeModel"/>, collecting the user types it reaches, or
/// says in words why the type cannot be serialized.
/// </summary>
internal sealed class TypeAnalyzer
{
    private const int MaxDepth = 32;
    private readonly Dictionary<string, ObjectModel?> _objects = new();
    private readonly IAssemblySymbol _assembly;
    private readonly Compilation _compilation;

    public TypeAnalyzer(Compilation compilation)
    {
        _compilation = compilation;
        _assembly = compilation.Assembly;
    }

    /// <summary>Every user type and tuple reached so far, in a stable order.</summary>
    public IEnumerable<ObjectModel> Objects => _objects.Values.Where(o => o is not null).Select(o => o!).OrderBy(o => o.FullName, StringComparer.Ordinal);

    public static readonly SymbolDisplayFormat FullFormat = SymbolDisplayFormat.FullyQualifiedFormat
        .WithMiscellaneousOptions(SymbolDisplayMiscellaneousOptions.UseSpecialTypes | SymbolDisplayMiscellaneousOptions.EscapeKeywordIdentifiers);

    public static readonly SymbolDisplayFormat ShortFormat = SymbolDisplayFormat.MinimallyQualifiedFormat
        .WithMiscellaneousOptions(SymbolDisplayMiscellaneousOptions.UseSpecialTypes | SymbolDisplayMiscellaneousOptions.IncludeNullableReferenceTypeModifier);

    /// <summary>The fully qualified name without nullable annotations (what typeof and generic arguments need).</summary>
    public static string FullName(ITypeSymbol type) => type.WithNullableAnnotation(NullableAnnotation.NotAnnotated).ToDisplayString(FullFormat);

    /// <summary>
    /// The model of a parameter or return type, with the user types it reaches added to <see cref="Objects"/>. A
    /// type is analyzed once per compilation (its symbol is the key), not once per method that uses it.
    /// </summary>
    public TypeModel? Analyze(ITypeSymbol type, out string? error)
    {
        Analysis analysis = Analyses.GetValue(_compilation, static _ => new(SymbolEqualityComparer.IncludeNullability)).GetOrAdd(type, t =>
        {
            var fresh = new TypeAnalyzer(_compilation);
            TypeModel? model = fresh.Analyze(t, 0, out string? e);
            return new Analysis(model, e, fresh.Objects.ToArray());
        });
        foreach (ObjectModel o in analysis.Objects)
        {
            if (!_objects.ContainsKey(o.FullName)) _objects[o.FullName] = o;
        }

        error = analysis.Error;
        return analysis.Model;
    }

    // Per compilation (symbols compare by identity within one), dropped with it.
    private static readonly System.Runtime.CompilerServices.ConditionalWeakTable<Compilation, System.Collections.Concurrent.ConcurrentDictionary<ITypeSymbol, Analysis>> Analyses = new();

    private sealed class Analysis(TypeModel? model, string? error, ObjectModel[] objects)
    {
        public TypeModel? Model { get; } = model;

        public string? Error { get; } = error;

        public ObjectModel[] Objects { get; } = objects;
    }

    private TypeModel? Analyze(ITypeSymbol type, int depth, out string? error)
    {
        error = null;
        if (depth > MaxDepth)
        {
            error = "it nests more than " + MaxDepth + " levels deep";
            return null;
        }

        string full = FullName(type);
        string display = type.WithNullableAnnotation(NullableAnnotation.NotAnnotated).ToDisplayString(ShortFormat);

        // A formatter the user named for the type comes first: it replaces a built-in format too (DateTime, an enum, int[]).
        if (CustomFormatter(type, out error) is { } formatter)
        {
            return new TypeModel(TypeKind.Custom, full, display, type.IsValueType, null, EquatableArray<TypeModel>.Empty, formatter, null,
                Doc: type is INamedTypeSymbol documented ? DocParser.Summary(documented) : null);
        }

        if (error is not null)
        {
            return null;
        }

        string? builtin = BuiltinName(type);
        if (builtin is not null)
        {
            return new TypeModel(TypeKind.Builtin, full, display, type.IsValueType, builtin, EquatableArray<TypeModel>.Empty, null, null);
        }

        switch (type)
        {
            case ITypeParameterSymbol:
                error = "it is an open generic type parameter; only closed types can travel";
                return null;
            case IPointerTypeSymbol or IFunctionPointerTypeSymbol:
                error = "pointers cannot travel between processes";
                return null;
            case IDynamicTypeSymbol:
                error = "dynamic has no shape to serialize; use object for plain data";
                return null;
            case IArrayTypeSymbol array:
                if (array.Rank != 1)
                {
                    error = array.Rank <= 3
                        ? "rectangular arrays travel as ndarrays only with a primitive number type (double[,], int[,,], ...); use an array of arrays for other elements"
                        : "rectangular arrays of more than 3 dimensions are not supported (use an array of arrays)";
                    return null;
                }

                return Sequence(full, display, array.ElementType, "static l => l.ToArray()", depth, out error);
        }

        if (type is not INamedTypeSymbol named)
        {
            error = "it is not a named type";
            return null;
        }

        if (named.TypeKind == Microsoft.CodeAnalysis.TypeKind.Enum)
        {
            string underlying = named.EnumUnderlyingType?.ToDisplayString(FullFormat) ?? "int";
            EquatableArray<EnumMemberModel> values = named.GetMembers().OfType<IFieldSymbol>()
                .Where(f => f.IsConst && f.HasConstantValue)
                .Select(f => new EnumMemberModel(f.Name, System.Convert.ToString(f.ConstantValue, System.Globalization.CultureInfo.InvariantCulture) ?? "0", DocParser.Summary(f)))
                .ToEquatableArray();
            bool flags = named.GetAttributes().Any(a => a.AttributeClass?.ToDisplayString() == "System.FlagsAttribute");
            return new TypeModel(TypeKind.Enum, full, display, true, null, EquatableArray<TypeModel>.Empty, null, underlying, values, DocParser.Summary(named), flags);
        }

        if (named.IsRefLikeType)
        {
            error = "ref struct types (such as Span<T>) cannot be stored or sent; use an array";
            return null;
        }

        if (named.TypeKind is Microsoft.CodeAnalysis.TypeKind.Delegate)
        {
            error = "delegates cannot travel between processes";
            return null;
        }

        if (named.IsGenericType)
        {
            string definition = named.ConstructedFrom.ToDisplayString(FullFormat);
            ImmutableArrayView args = new(named.TypeArguments);
            switch (definition)
            {
                case "global::System.Nullable<T>":
                    {
                        TypeModel? inner = Analyze(args[0], depth + 1, out error);
                        return inner is null ? null : new TypeModel(TypeKind.Nullable, full, display, true, null, new[] { inner }.ToEquatableArray(), null, null);
                    }

                case "global::System.Collections.Generic.List<T>":
                case "global::System.Collections.Generic.IList<T>":
                case "global::System.Collections.Generic.ICollection<T>":
                case "global::System.Collections.Generic.IEnumerable<T>":
                case "global::System.Collections.Generic.IReadOnlyList<T>":
                case "global::System.Collections.Generic.IReadOnlyCollection<T>":
                    return Sequence(full, display, args[0], "static l => l", depth, out error);
                case "global::System.Collections.Generic.HashSet<T>":
                case "global::System.Collections.Generic.ISet<T>":
                case "global::System.Collections.Generic.IReadOnlySet<T>":
                    return Sequence(full, display, args[0], "static l => new global::System.Collections.Generic.HashSet<" + FullName(args[0]) + ">(l)", depth, out error);
                case "global::System.Collections.Generic.SortedSet<T>":
                case "global::System.Collections.Generic.Queue<T>":
                case "global::System.Collections.Generic.LinkedList<T>":
                case "global::System.Collections.ObjectModel.Collection<T>":
                case "global::System.Collections.ObjectModel.ObservableCollection<T>":
                    return Sequence(full, display, args[0], "static l => new " + full + "(l)", depth, out error);
                case "global::System.Collections.Generic.Stack<T>":
                    // Written top first (as it enumerates), so pushed back in the reverse order to stand as it stood.
                    return Sequence(full, display, args[0], "static l => { l.Reverse(); return new " + full + "(l); }", depth, out error);
                case "global::System.Collections.ObjectModel.ReadOnlyCollection<T>":
                    return Sequence(full, display, args[0], "static l => l.AsReadOnly()", depth, out error);
                case "global::System.Collections.Immutable.ImmutableArray<T>":
                    return Sequence(full, display, args[0], "static l => global::System.Collections.Immutable.ImmutableArray.CreateRange(l)", depth, out error, valueType: true);
                case "global::System.Collections.Immutable.ImmutableList<T>":
                case "global::System.Collections.Immutable.IImmutableList<T>":
                    return Sequence(full, display, args[0], "static l => global::System.Collections.Immutable.ImmutableList.CreateRange(l)", depth, out error);
                case "global::System.Collections.Immutable.ImmutableHashSet<T>":
                case "global::System.Collections.Immutable.IImmutableSet<T>":
                    return Sequence(full, display, args[0], "static l => global::System.Collections.Immutable.ImmutableHashSet.CreateRange(l)", depth, out error);
                case "global::System.Collections.Immutable.ImmutableSortedSet<T>":
                    return Sequence(full, display, args[0], "static l => global::System.Collections.Immutable.ImmutableSortedSet.CreateRange(l)", depth, out error);
                case "global::System.Collections.Generic.Dictionary<TKey, TValue>":
                case "global::System.Collections.Generic.IDictionary<TKey, TValue>":
                case "global::System.Collections.Generic.IReadOnlyDictionary<TKey, TValue>":
                    return Dictionary(full, display, args, "static d => d", depth, out error);
                case "global::System.Collections.Generic.SortedDictionary<TKey, TValue>":
                case "global::System.Collections.Generic.SortedList<TKey, TValue>":
                case "global::System.Collections.Concurrent.ConcurrentDictionary<TKey, TValue>":
                    return Dictionary(full, display, args, "static d => new " + full + "(d)", depth, out error);
                case "global::System.Collections.ObjectModel.ReadOnlyDictionary<TKey, TValue>":
                    return Dictionary(full, display, args, "static d => d.AsReadOnly()", depth, out error);
                case "global::System.Collections.Immutable.ImmutableDictionary<TKey, TValue>":
                case "global::System.Collections.Immutable.IImmutableDictionary<TKey, TValue>":
                    return Dictionary(full, display, args, "static d => global::System.Collections.Immutable.ImmutableDictionary.CreateRange(d)", depth, out error);
                case "global::System.Collections.Immutable.ImmutableSortedDictionary<TKey, TValue>":
                    return Dictionary(full, display, args, "static d => global::System.Collections.Immutable.ImmutableSortedDictionary.CreateRange(d)", depth, out error);
            }

            if (named.IsTupleType || definition.StartsWith("global::System.Tuple<", StringComparison.Ordinal))
            {
                return Tuple(named, full, display, depth, out error);
            }

            if (definition.StartsWith("global::System.", StringComparison.Ordinal))
            {
                error = $"{named.ConstructedFrom.Name}<...> is not one of the supported collections ({SupportedCollections})";
                return null;
            }
        }

        if (named.SpecialType != SpecialType.None || IsFrameworkNamespace(named.ContainingNamespace))
        {
            error = $"{display} is a framework type without a wire format; use one of the supported types or a record of them";
            return null;
        }

        return Object(named, full, display, depth, out error);
    }

    private const string SupportedCollections = "arrays, List<T>, IReadOnlyList<T>, IEnumerable<T>, sets, queues, stacks, immutable and read-only collections, "
        + "dictionaries with string, integer, GUID, enum or date keys, tuples";

    private TypeModel? Dictionary(string full, string display, ImmutableArrayView args, string create, int depth, out string? error)
    {
        error = null;
        TypeModel? key = null;
        if (args[0].SpecialType != SpecialType.System_String)
        {
            // Integers, GUIDs and enums: themselves in MessagePack, their text in JSON.
            key = IsKeyType(args[0]) ? Analyze(args[0], depth + 1, out error) : null;
            if (key is null)
            {
                error = "dictionary keys must be strings, integers, GUIDs, enums, DateOnly or DateTime (JSON object keys are text)";
                return null;
            }
        }

        TypeModel? value = Analyze(args[1], depth + 1, out error);
        return value is null ? null : new TypeModel(TypeKind.Dictionary, full, display, false, null,
            (key is null ? new[] { value } : new[] { value, key }).ToEquatableArray(), create, null);
    }

    private TypeModel? Sequence(string full, string display, ITypeSymbol element, string create, int depth, out string? error, bool valueType = false)
    {
        TypeModel? inner = Analyze(element, depth + 1, out error);
        return inner is null ? null : new TypeModel(TypeKind.Sequence, full, display, valueType, null, new[] { inner }.ToEquatableArray(), create, null);
    }

    private TypeModel? Tuple(INamedTypeSymbol named, string full, string display, int depth, out string? error)
    {
        error = null;
        ImmutableArrayView elements = new(named.IsTupleType ? named.TupleElements.Select(e => e.Type).ToArray() : named.TypeArguments.ToArray());
        if (elements.Count > 7)
        {
            error = "tuples of more than 7 elements are not supported; use a record";
            return null;
        }

        var members = new List<MemberModel>();
        for (int i = 0; i < elements.Count; i++)
        {
            TypeModel? m = Analyze(elements[i], depth + 1, out error);
            if (m is null)
            {
                error = $"tuple element {i + 1}: {error}";
                return null;
            }

            members.Add(new MemberModel("Item" + (i + 1), "item" + (i + 1), m, false, false, i));
        }

        if (!_objects.ContainsKey(full))
        {
            _objects[full] = new ObjectModel(full, display, named.IsValueType, true, members.ToEquatableArray(), members.Count);
        }

        return new TypeModel(TypeKind.Tuple, full, display, named.IsValueType, null, EquatableArray<TypeModel>.Empty, null, null);
    }

    private TypeModel? Object(INamedTypeSymbol named, string full, string display, int depth, out string? error)
    {
        error = null;
        var reference = new TypeModel(TypeKind.Object, full, display, named.IsValueType, null, EquatableArray<TypeModel>.Empty, null, null);
        if (_objects.ContainsKey(full))
        {
            return reference; // known, or being analyzed higher up (a recursive type)
        }

        if (named.IsAbstract || named.TypeKind == Microsoft.CodeAnalysis.TypeKind.Interface)
        {
            error = $"{display} is {(named.TypeKind == Microsoft.CodeAnalysis.TypeKind.Interface ? "an interface" : "abstract")}; the receiver could not know which type to create. Use a concrete type";
            return null;
        }

        if (!IsAccessible(named))
        {
            error = $"{display} is not accessible from generated code (it must be public or internal, in this assembly or a public one)";
            return null;
        }

        _objects[full] = null; // mark as in progress for recursive types
        var members = new List<(string Name, ITypeSymbol Type, bool Settable, bool InitOnly)>();
        var docs = new Dictionary<string, string?>();
        foreach (ISymbol symbol in AllMembers(named))
        {
            switch (symbol)
            {
                case IPropertySymbol { IsStatic: false, IsIndexer: false, DeclaredAccessibility: Accessibility.Public, GetMethod: not null } p
                    when p.GetMethod.DeclaredAccessibility == Accessibility.Public && !p.GetAttributes().Any(IsIgnore):
                    bool settable = p.SetMethod is { DeclaredAccessibility: Accessibility.Public or Accessibility.Internal } && !p.IsReadOnly;
                    members.Add((p.Name, p.Type, settable, settable && p.SetMethod!.IsInitOnly));
                    docs[p.Name] = DocParser.Summary(p);
                    break;
                case IFieldSymbol { IsStatic: false, IsConst: false, DeclaredAccessibility: Accessibility.Public, IsImplicitlyDeclared: false } f
                    when !f.GetAttributes().Any(IsIgnore):
                    members.Add((f.Name, f.Type, !f.IsReadOnly, false));
                    docs[f.Name] = DocParser.Summary(f);
                    break;
            }
        }

        // Prefer the constructor that sets the most members by name (a record's primary constructor).
        IMethodSymbol? constructor = named.InstanceConstructors
            .Where(c => c.DeclaredAccessibility is Accessibility.Public or Accessibility.Internal && !c.Parameters.Any(p => p.RefKind != RefKind.None))
            .Where(c => c.Parameters.All(p => members.Any(m => string.Equals(m.Name, p.Name, StringComparison.OrdinalIgnoreCase))))
            .Where(c => !(c.Parameters.Length == 1 && SymbolEqualityComparer.Default.Equals(c.Parameters[0].Type, named))) // a record's copy constructor
            .OrderByDescending(c => c.Parameters.Length)
            .FirstOrDefault();
        if (constructor is null)
        {
            _objects.Remove(full);
            error = $"{display} has no public constructor that IpyRpc can call (a parameterless one, or one whose parameters are named like its properties)";
            return null;
        }

        var models = new List<MemberModel>();
        foreach ((string name, ITypeSymbol memberType, bool settable, bool initOnly) in members)
        {
            int ctorIndex = -1;
            for (int i = 0; i < constructor.Parameters.Length; i++)
            {
                if (string.Equals(constructor.Parameters[i].Name, name, StringComparison.OrdinalIgnoreCase)) ctorIndex = i;
            }

            if (ctorIndex < 0 && !settable)
            {
                continue; // computed or get-only: written, never read back
            }

            TypeModel? m = Analyze(memberType, depth + 1, out error);
            if (m is null)
            {
                _objects.Remove(full);
                error = $"member {display}.{name}: {error}";
                return null;
            }

            bool required = ctorIndex >= 0
                && !constructor.Parameters[ctorIndex].HasExplicitDefaultValue
                && (memberType.IsValueType
                    ? memberType.OriginalDefinition.SpecialType != SpecialType.System_Nullable_T
                    : memberType.NullableAnnotation == NullableAnnotation.NotAnnotated); // not in nullable-oblivious code
            models.Add(new MemberModel(name, WireName(name), m, settable, initOnly, ctorIndex, required, docs[name]));
        }

        // Get-only members not set by the constructor are still written (readers ignore them).
        foreach ((string name, ITypeSymbol memberType, bool settable, _) in members)
        {
            if (models.Any(m => m.Name == name)) continue;
            TypeModel? m = Analyze(memberType, depth + 1, out _);
            if (m is not null) models.Add(new MemberModel(name, WireName(name), m, false, false, -2, Doc: docs[name]));
        }

        _objects[full] = new ObjectModel(full, display, named.IsValueType, false, models.ToEquatableArray(), constructor.Parameters.Length, DocParser.Summary(named));
        return reference;
    }

    private const string FormatterAttribute = "global::IpyRpc.IpyRpcFormatterAttribute";

    /// <summary>
    /// The formatter class the user gave <paramref name="type"/> ([IpyRpcFormatter] on the type, or on this assembly
    /// for a type it cannot annotate), as a fully qualified name; <see langword="null"/> with no error when there is none.
    /// </summary>
    private string? CustomFormatter(ITypeSymbol type, out string? error)
    {
        error = null;
        if (type is ITypeParameterSymbol or IPointerTypeSymbol or IFunctionPointerTypeSymbol or IDynamicTypeSymbol) return null;
        ITypeSymbol plain = type.WithNullableAnnotation(NullableAnnotation.NotAnnotated);
        var given = new List<ITypeSymbol>();
        foreach (AttributeData a in plain is INamedTypeSymbol ? plain.GetAttributes() : System.Collections.Immutable.ImmutableArray<AttributeData>.Empty)
        {
            if (IsFormatterAttribute(a) && a.ConstructorArguments.Length == 1 && a.ConstructorArguments[0].Value is ITypeSymbol f) given.Add(f);
        }

        if (given.Count == 0)
        {
            foreach (AttributeData a in _compilation.Assembly.GetAttributes())
            {
                if (IsFormatterAttribute(a) && a.ConstructorArguments.Length == 1 && a.ConstructorArguments[0].Value is INamedTypeSymbol f
                    && FormattedType(f) is { } formatted && SymbolEqualityComparer.Default.Equals(formatted, plain))
                {
                    given.Add(f);
                }
            }
        }

        if (given.Count == 0) return null;
        string display = plain.ToDisplayString(ShortFormat);
        if (given.Count > 1)
        {
            error = $"{display} is given {given.Count} formatters with [IpyRpcFormatter] ({string.Join(", ", given.Select(g => g.ToDisplayString(ShortFormat)))}); give it one";
            return null;
        }

        // A generic type may name its formatter's open form (Formatter<>): it is made with the type's own arguments.
        if (given[0] is INamedTypeSymbol { IsUnboundGenericType: true } open && plain is INamedTypeSymbol { IsGenericType: true } generic && open.Arity == generic.Arity)
        {
            given[0] = open.OriginalDefinition.Construct([.. generic.TypeArguments]);
        }

        if (given[0] is not INamedTypeSymbol formatter || formatter.TypeKind != Microsoft.CodeAnalysis.TypeKind.Class || formatter.IsAbstract || formatter.IsUnboundGenericType
            || (formatter.TypeParameters.Length > 0 && formatter.TypeArguments.Any(t => t is ITypeParameterSymbol)))
        {
            error = $"its [IpyRpcFormatter] names {given[0].ToDisplayString(ShortFormat)}, which is not a concrete, non-generic class";
            return null;
        }

        string name = formatter.ToDisplayString(ShortFormat);
        if (FormattedType(formatter) is not { } handles)
        {
            error = $"its [IpyRpcFormatter] names {name}, which does not derive from IpyRpc.Formatting.IpyRpcFormatter<{display}>";
            return null;
        }

        if (!SymbolEqualityComparer.Default.Equals(handles, plain))
        {
            error = $"its [IpyRpcFormatter] names {name}, a formatter of {handles.ToDisplayString(ShortFormat)}, not of {display}";
            return null;
        }

        if (!IsAccessible(formatter) || !formatter.InstanceConstructors.Any(c => c.Parameters.Length == 0
            && (c.DeclaredAccessibility == Accessibility.Public || (c.DeclaredAccessibility == Accessibility.Internal && SymbolEqualityComparer.Default.Equals(formatter.ContainingAssembly, _assembly)))))
        {
            error = $"its [IpyRpcFormatter] {name} needs a public parameterless constructor (and to be public, or internal to this assembly) for generated code to make it";
            return null;
        }

        return FullName(formatter);
    }

    private static bool IsFormatterAttribute(AttributeData a) => a.AttributeClass?.ToDisplayString(FullFormat) == FormatterAttribute;

    // The T of the IpyRpcFormatter<T> a class derives from, without nullable annotations.
    private static ITypeSymbol? FormattedType(INamedTypeSymbol formatter)
    {
        for (INamedTypeSymbol? t = formatter.BaseType; t is not null; t = t.BaseType)
        {
            if (t.IsGenericType && t.ConstructedFrom.ToDisplayString(FullFormat) == "global::IpyRpc.Formatting.IpyRpcFormatter<T>")
            {
                return t.TypeArguments[0].WithNullableAnnotation(NullableAnnotation.NotAnnotated);
            }
        }

        return null;
    }

    // The dictionary keys besides strings: integer types, Guid and enums (DictionaryKeys has one for each).
    private static bool IsKeyType(ITypeSymbol key)
        => key.SpecialType is SpecialType.System_SByte or SpecialType.System_Byte or SpecialType.System_Int16 or SpecialType.System_UInt16
            or SpecialType.System_Int32 or SpecialType.System_UInt32 or SpecialType.System_Int64 or SpecialType.System_UInt64
            || key.TypeKind == Microsoft.CodeAnalysis.TypeKind.Enum
            || FullName(key) is "global::System.Guid" or "global::System.DateOnly"
            || key.SpecialType == SpecialType.System_DateTime;

    private static bool IsFrameworkNamespace(INamespaceSymbol? ns)
    {
        while (ns is { ContainingNamespace.IsGlobalNamespace: false }) ns = ns.ContainingNamespace;
        return ns?.Name is "System" or "Microsoft";
    }

    private static bool IsIgnore(AttributeData a) => a.AttributeClass?.Name is "IgnoreDataMemberAttribute" or "JsonIgnoreAttribute";

    private static IEnumerable<ISymbol> AllMembers(INamedTypeSymbol type)
    {
        var seen = new HashSet<string>();
        for (INamedTypeSymbol? t = type; t is not null && t.SpecialType != SpecialType.System_Object && t.SpecialType != SpecialType.System_ValueType; t = t.BaseType)
        {
            foreach (ISymbol m in t.GetMembers())
            {
                if (m.Kind is SymbolKind.Property or SymbolKind.Field && seen.Add(m.Name) && m.Name != "EqualityContract")
                {
                    yield return m;
                }
            }
        }
    }

    private bool IsAccessible(INamedTypeSymbol type)
    {
        for (INamedTypeSymbol? t = type; t is not null; t = t.ContainingType)
        {
            bool sameAssembly = SymbolEqualityComparer.Default.Equals(t.ContainingAssembly, _assembly);
            if (t.DeclaredAccessibility == Accessibility.Public) continue;
            if (t.DeclaredAccessibility is Accessibility.Internal or Accessibility.ProtectedOrInternal && sameAssembly) continue;
            return false;
        }

        return true;
    }

    private static string WireName(string name) => name.Length == 0 ? name : char.ToLowerInvariant(name[0]) + name.Substring(1);

    private static string? BuiltinName(ITypeSymbol type)
    {
        switch (type.SpecialType)
        {
            case SpecialType.System_Boolean: return "Boolean";
            case SpecialType.System_Byte: return "Byte";
            case SpecialType.System_SByte: return "SByte";
            case SpecialType.System_Int16: return "Int16";
            case SpecialType.System_UInt16: return "UInt16";
            case SpecialType.System_Int32: return "Int32";
            case SpecialType.System_UInt32: return "UInt32";
            case SpecialType.System_Int64: return "Int64";
            case SpecialType.System_UInt64: return "UInt64";
            case SpecialType.System_Single: return "Single";
            case SpecialType.System_Double: return "Double";
            case SpecialType.System_Decimal: return "Decimal";
            case SpecialType.System_Char: return "Char";
            case SpecialType.System_String: return "String";
            case SpecialType.System_Object: return "Object";
            case SpecialType.System_DateTime: return "DateTime";
        }

        if (type is IArrayTypeSymbol { Rank: 2 or 3 } nd && NumericElement(nd.ElementType) is { } element)
        {
            return element + "Array" + nd.Rank + "D";
        }

        if (type is IArrayTypeSymbol { Rank: 1 } array)
        {
            switch (array.ElementType.SpecialType)
            {
                case SpecialType.System_Byte: return "ByteArray";
                case SpecialType.System_Double: return "DoubleArray";
                case SpecialType.System_Single: return "SingleArray";
                case SpecialType.System_Int32: return "Int32Array";
                case SpecialType.System_Int64: return "Int64Array";
                case SpecialType.System_Int16: return "Int16Array";
                case SpecialType.System_UInt16: return "UInt16Array";
                case SpecialType.System_UInt32: return "UInt32Array";
                case SpecialType.System_UInt64: return "UInt64Array";
                case SpecialType.System_SByte: return "SByteArray";
            }
        }

        if (type is INamedTypeSymbol { IsGenericType: true, TypeArguments.Length: 1 } tensor
            && tensor.ConstructedFrom.ToDisplayString() == "System.Numerics.Tensors.Tensor<T>"
            && NumericElement(tensor.TypeArguments[0]) is { } tensorElement)
        {
            return tensorElement + "Tensor";
        }

        switch (FullName(type))
        {
            case "global::System.Guid": return "Guid";
            case "global::System.DateTimeOffset": return "DateTimeOffset";
            case "global::System.TimeSpan": return "TimeSpan";
            case "global::System.DateOnly": return "DateOnly";
            case "global::System.TimeOnly": return "TimeOnly";
            case "global::System.Half": return "Half";
            case "global::System.Int128": return "Int128";
            case "global::System.UInt128": return "UInt128";
            case "global::System.Numerics.BigInteger": return "BigInteger";
            case "global::System.Uri": return "Uri";
            case "global::System.Version": return "Version";
            case "global::System.ReadOnlyMemory<byte>": return "ReadOnlyByteMemory";
            case "global::System.Memory<byte>": return "ByteMemory";
            case "global::System.Text.Json.JsonElement": return "JsonElement";
            case "global::IpyRpc.DataFrame": return "DataFrame";
        }

        return null;
    }

    // The element types n-dimensional arrays and tensors travel as raw blocks of.
    private static string? NumericElement(ITypeSymbol element) => element.SpecialType switch
    {
        SpecialType.System_Double => "Double",
        SpecialType.System_Single => "Single",
        SpecialType.System_Int32 => "Int32",
        SpecialType.System_Int64 => "Int64",
        SpecialType.System_Int16 => "Int16",
        SpecialType.System_UInt16 => "UInt16",
        SpecialType.System_UInt32 => "UInt32",
        SpecialType.System_UInt64 => "UInt64",
        SpecialType.System_SByte => "SByte",
        SpecialType.System_Byte => "Byte",
        _ => null,
    };

    /// <summary>Index access over a symbol list, without dragging ImmutableArray's default-value traps around.</summary>
    private readonly struct ImmutableArrayView
    {
        private readonly ITypeSymbol[] _items;

        public ImmutableArrayView(IEnumerable<ITypeSymbol> items) => _items = items.ToArray();

        public int Count => _items.Length;

        public ITypeSymbol this[int i] => _items[i];
    }
}
