using System;
using System.Collections.Generic;
using System.Linq;
using IpyRpc.Generators.Model;

namespace IpyRpc.Generators.Emit;

/// <summary>
/// Emits one class per assembly holding a formatter for every non-built-in type the exported
/// functions use: composed collection formatters, enum formatters, and a formatter class per
/// user type and tuple. Fields are ordered so each is initialized after those it composes.
/// </summary>
internal static class FormatterEmitter
{
    public static string? Emit(IReadOnlyList<FunctionModel> functions, string assemblyKey, IReadOnlyList<EventModel>? events = null)
    {
        var types = new Dictionary<string, TypeModel>(StringComparer.Ordinal);
        var objects = new Dictionary<string, ObjectModel>(StringComparer.Ordinal);
        foreach (EventModel e in events ?? [])
        {
            Collect(e.Payload, types);
            foreach (ObjectModel o in e.Objects)
            {
                objects[o.FullName] = o;
                foreach (MemberModel m in o.Members) Collect(m.Type, types);
            }
        }

        foreach (FunctionModel f in functions)
        {
            foreach (ParameterModel p in f.Parameters) Collect(p.Type, types);
            Collect(f.ReturnType, types);
            foreach (ObjectModel o in f.Objects)
            {
                objects[o.FullName] = o;
                foreach (MemberModel m in o.Members) Collect(m.Type, types);
            }
        }

        if (types.Count == 0)
        {
            return null;
        }

        var w = new CodeWriter();
        w.Line(CodeWriter.Header);
        w.Open("namespace IpyRpc.Generated");
        w.Line("/// <summary>Formatters for the types the exported functions of this assembly take and return.</summary>");
        w.Line(CodeWriter.GeneratedCode);
        w.Open($"internal static class {Names.HolderName(assemblyKey)}");

        IEnumerable<TypeModel> ordered = types.Values.OrderBy(Depth).ThenBy(t => Names.Field(t), StringComparer.Ordinal);
        foreach (TypeModel t in ordered)
        {
            w.Line($"/// <summary>{Escape(t.Display)}</summary>");
            w.Line($"public static readonly {Names.Formatting}.IpyRpcFormatter<{Names.FormatterArgument(t)}> {Names.Field(t)} = {Create(t)};");
        }

        w.Line();
        w.Line("/// <summary>Makes these formatters known to dynamic calls (client.CallAsync&lt;T&gt;).</summary>");
        w.Line("[global::System.Runtime.CompilerServices.ModuleInitializer]");
        w.Open("internal static void Register()");
        foreach (TypeModel t in types.Values.OrderBy(t => Names.Field(t), StringComparer.Ordinal))
        {
            w.Line($"{Names.Formatting}.FormatterRegistry.TryRegister({Names.Field(t)});");
        }

        w.Close();
        foreach (ObjectModel o in objects.Values.OrderBy(o => o.FullName, StringComparer.Ordinal))
        {
            w.Line();
            if (o.IsTuple) EmitTuple(w, o, types);
            else EmitObject(w, o, types);
        }

        w.Close();
        w.Close();
        return w.ToString();
    }

    private static void Collect(TypeModel? type, Dictionary<string, TypeModel> types)
    {
        if (type is null || type.Kind == TypeKind.Builtin || types.ContainsKey(type.FullName)) return;
        types[type.FullName] = type;
        foreach (TypeModel a in type.Arguments) Collect(a, types);
    }

    // Objects, tuples and enums construct without touching other fields; composites need their elements first.
    private static int Depth(TypeModel t) => t.Kind is TypeKind.Object or TypeKind.Tuple or TypeKind.Enum or TypeKind.Builtin ? 0 : 1 + t.Arguments.Select(Depth).DefaultIfEmpty(0).Max();

    private static string Create(TypeModel t)
    {
        switch (t.Kind)
        {
            case TypeKind.Enum:
                return $"new {Names.Formatting}.EnumFormatter<{t.FullName}>(static v => (long)v, static n => ({t.FullName})n)";
            case TypeKind.Nullable:
                return $"new {Names.Formatting}.NullableFormatter<{t.Arguments[0].FullName}>({Names.LocalFormatter(t.Arguments[0])})";
            case TypeKind.Sequence:
                return $"new {Names.Formatting}.SequenceFormatter<{t.FullName}, {t.Arguments[0].FullName}>({Names.LocalFormatter(t.Arguments[0])}, {t.Create})";
            case TypeKind.Dictionary:
                return $"new {Names.Formatting}.DictionaryFormatter<{t.FullName}, {t.Arguments[0].FullName}>({Names.LocalFormatter(t.Arguments[0])}, {t.Create})";
            case TypeKind.Object:
            case TypeKind.Tuple:
                return $"new {ClassName(t.FullName)}()";
            default:
                throw new InvalidOperationException("No formatter to create for " + t.Kind);
        }
    }

    private static string ClassName(string fullName) => "Formatter_" + Names.Field(new TypeModel(TypeKind.Object, fullName, "", false, null, EquatableArray<TypeModel>.Empty, null, null));

    private static string Escape(string text) => text.Replace("&", "&amp;").Replace("<", "&lt;").Replace(">", "&gt;");

    private static void EmitObject(CodeWriter w, ObjectModel o, Dictionary<string, TypeModel> types)
    {
        string arg = o.IsValueType ? o.FullName : o.FullName + "?";
        MemberModel[] written = o.Members.ToArray();
        MemberModel[] read = written.Where(m => m.ConstructorIndex >= 0 || m.Settable).ToArray();

        w.Line($"/// <summary>Reads and writes {Escape(o.Display)} as a map of its members.</summary>");
        w.Open($"private sealed class {ClassName(o.FullName)} : {Names.Formatting}.IpyRpcFormatter<{arg}>");

        // MessagePack write
        w.Open($"public override void Write(ref {Names.MessagePack}.MessagePackWriter writer, {arg} value)");
        MessagePackWriteGuard(w, o);
        w.Line($"writer.WriteMapHeader({written.Length});");
        foreach (MemberModel m in written)
        {
            w.Line($"writer.WriteString({Names.Utf8(m.WireName)});");
            w.Line($"{Names.LocalFormatter(m.Type)}.Write(ref writer, value.{m.Name});");
        }

        w.Close();
        w.Line();

        // MessagePack read
        w.Open($"public override {arg} Read(ref {Names.MessagePack}.MessagePackReader reader)");
        MessagePackReadGuard(w, o);
        w.Line("reader.Enter();");
        w.Line("int count = reader.ReadMapHeader();");
        DeclareLocals(w, read);
        w.Open("for (int i = 0; i < count; i++)");
        w.Line("global::System.ReadOnlySpan<byte> key = reader.ReadStringSpan();");
        string keyword = "if";
        for (int i = 0; i < read.Length; i++)
        {
            MemberModel m = read[i];
            string test = m.WireName == m.Name ? Equal("key", m.WireName) : Equal("key", m.WireName) + " || " + Equal("key", m.Name);
            w.Line($"{keyword} ({test}) {{ m{i} = {Names.LocalFormatter(m.Type)}.Read(ref reader); has{i} = true; }}");
            keyword = "else if";
        }

        w.Line(read.Length == 0 ? "reader.Skip();" : "else reader.Skip();");
        w.Close();
        w.Line("reader.Exit();");
        w.Line($"return Create({string.Join(", ", Enumerable.Range(0, read.Length).Select(i => $"m{i}, has{i}"))});");
        w.Close();
        w.Line();

        // JSON write
        w.Open($"public override void Write({Names.Json}.Utf8JsonWriter writer, {arg} value)");
        JsonWriteGuard(w, o);
        w.Line("writer.WriteStartObject();");
        foreach (MemberModel m in written)
        {
            w.Line($"writer.WritePropertyName({Names.Utf8(m.WireName)});");
            w.Line($"{Names.LocalFormatter(m.Type)}.Write(writer, value.{m.Name});");
        }

        w.Line("writer.WriteEndObject();");
        w.Close();
        w.Line();

        // JSON read
        w.Open($"public override {arg} Read(ref {Names.Json}.Utf8JsonReader reader)");
        JsonReadGuard(w, o);
        w.Line($"{Names.Formatting}.Json.JsonRead.Expect(ref reader, {Names.Json}.JsonTokenType.StartObject, {Names.Literal("an object (" + o.Display + ")")});");
        DeclareLocals(w, read);
        w.Open("while (true)");
        w.Line($"{Names.Formatting}.Json.JsonRead.Next(ref reader);");
        w.Line($"if (reader.TokenType == {Names.Json}.JsonTokenType.EndObject) break;");
        keyword = "if";
        for (int i = 0; i < read.Length; i++)
        {
            MemberModel m = read[i];
            string test = m.WireName == m.Name ? $"reader.ValueTextEquals({Names.Utf8(m.WireName)})" : $"reader.ValueTextEquals({Names.Utf8(m.WireName)}) || reader.ValueTextEquals({Names.Utf8(m.Name)})";
            w.Line($"{keyword} ({test}) {{ {Names.Formatting}.Json.JsonRead.Next(ref reader); m{i} = {Names.LocalFormatter(m.Type)}.Read(ref reader); has{i} = true; }}");
            keyword = "else if";
        }

        w.Line((read.Length == 0 ? "" : "else ") + $"{{ {Names.Formatting}.Json.JsonRead.Next(ref reader); reader.Skip(); }}");
        w.Close();
        w.Line($"return Create({string.Join(", ", Enumerable.Range(0, read.Length).Select(i => $"m{i}, has{i}"))});");
        w.Close();
        w.Line();

        // Construction: constructor parameters, then init-only members, then settable ones that were present.
        string parameters = string.Join(", ", read.Select((m, i) => $"{Names.FormatterArgument(m.Type)} m{i}, bool has{i}"));
        w.Open($"private static {o.FullName} Create({parameters})");
        for (int i = 0; i < read.Length; i++)
        {
            if (read[i].Required)
            {
                w.Line($"if (!has{i}) throw new {Names.Formatting}.IpyRpcSerializationException({Names.Literal($"{o.Display} is missing its member '{read[i].WireName}' ({read[i].Type.Display}), which has no default")});");
            }
        }

        var ctorArgs = new string[o.ConstructorArity];
        for (int i = 0; i < ctorArgs.Length; i++) ctorArgs[i] = "default!";
        for (int i = 0; i < read.Length; i++)
        {
            if (read[i].ConstructorIndex >= 0) ctorArgs[read[i].ConstructorIndex] = $"m{i}";
        }

        string[] inits = read.Select((m, i) => (m, i)).Where(x => x.m.ConstructorIndex < 0 && x.m.InitOnly).Select(x => $"{x.m.Name} = x{x.i}").ToArray();
        for (int i = 0; i < read.Length; i++)
        {
            if (read[i].ConstructorIndex < 0 && read[i].InitOnly)
            {
                w.Line($"var x{i} = has{i} ? m{i} : default!;");
            }
        }

        w.Line($"var result = new {o.FullName}({string.Join(", ", ctorArgs)}){(inits.Length == 0 ? "" : " { " + string.Join(", ", inits) + " }")};");
        for (int i = 0; i < read.Length; i++)
        {
            if (read[i].ConstructorIndex < 0 && !read[i].InitOnly)
            {
                w.Line($"if (has{i}) result.{read[i].Name} = m{i};");
            }
        }

        w.Line("return result;");
        w.Close();
        w.Close();
    }

    // Every generated formatter opens its four methods the same way: reference types map null to
    // nil/null; value types refuse nil/null with a message naming the type.
    private static void MessagePackWriteGuard(CodeWriter w, ObjectModel o)
    {
        if (!o.IsValueType) w.Line("if (value is null) { writer.WriteNil(); return; }");
    }

    private static void MessagePackReadGuard(CodeWriter w, ObjectModel o) => w.Line(o.IsValueType
        ? $"if (reader.TryReadNil()) throw reader.Error(\"Expected {o.Display} but found nil\");"
        : "if (reader.TryReadNil()) return null;");

    private static void JsonWriteGuard(CodeWriter w, ObjectModel o)
    {
        if (!o.IsValueType) w.Line("if (value is null) { writer.WriteNullValue(); return; }");
    }

    private static void JsonReadGuard(CodeWriter w, ObjectModel o) => w.Line(o.IsValueType
        ? $"if (reader.TokenType == {Names.Json}.JsonTokenType.Null) throw new {Names.Formatting}.IpyRpcSerializationException(\"Expected {o.Display} but found null\");"
        : $"if (reader.TokenType == {Names.Json}.JsonTokenType.Null) return null;");

    private static string Equal(string span, string text) => $"global::System.MemoryExtensions.SequenceEqual({span}, {Names.Utf8(text)})";

    private static void DeclareLocals(CodeWriter w, MemberModel[] members)
    {
        for (int i = 0; i < members.Length; i++)
        {
            w.Line($"{Names.FormatterArgument(members[i].Type)} m{i} = default!; bool has{i} = false;");
        }
    }

    private static void EmitTuple(CodeWriter w, ObjectModel o, Dictionary<string, TypeModel> types)
    {
        string arg = o.IsValueType ? o.FullName : o.FullName + "?";
        MemberModel[] items = o.Members.ToArray();
        w.Line($"/// <summary>Reads and writes {Escape(o.Display)} as an array of {items.Length}.</summary>");
        w.Open($"private sealed class {ClassName(o.FullName)} : {Names.Formatting}.IpyRpcFormatter<{arg}>");

        w.Open($"public override void Write(ref {Names.MessagePack}.MessagePackWriter writer, {arg} value)");
        MessagePackWriteGuard(w, o);
        w.Line($"writer.WriteArrayHeader({items.Length});");
        foreach (MemberModel m in items) w.Line($"{Names.LocalFormatter(m.Type)}.Write(ref writer, value.{m.Name});");
        w.Close();
        w.Line();

        w.Open($"public override {arg} Read(ref {Names.MessagePack}.MessagePackReader reader)");
        MessagePackReadGuard(w, o);
        w.Line("int start = reader.Position;");
        w.Line($"if (reader.ReadArrayHeader() != {items.Length}) throw new {Names.MessagePack}.MessagePackSerializationException(\"Expected an array of {items.Length} elements for {o.Display}\", start);");
        for (int i = 0; i < items.Length; i++) w.Line($"var m{i} = {Names.LocalFormatter(items[i].Type)}.Read(ref reader);");
        w.Line($"return {Construct(o, items.Length)};");
        w.Close();
        w.Line();

        w.Open($"public override void Write({Names.Json}.Utf8JsonWriter writer, {arg} value)");
        JsonWriteGuard(w, o);
        w.Line("writer.WriteStartArray();");
        foreach (MemberModel m in items) w.Line($"{Names.LocalFormatter(m.Type)}.Write(writer, value.{m.Name});");
        w.Line("writer.WriteEndArray();");
        w.Close();
        w.Line();

        w.Open($"public override {arg} Read(ref {Names.Json}.Utf8JsonReader reader)");
        JsonReadGuard(w, o);
        w.Line($"{Names.Formatting}.Json.JsonRead.Expect(ref reader, {Names.Json}.JsonTokenType.StartArray, {Names.Literal("an array (" + o.Display + ")")});");
        for (int i = 0; i < items.Length; i++)
        {
            w.Line($"{Names.Formatting}.Json.JsonRead.Next(ref reader);");
            w.Line($"var m{i} = {Names.LocalFormatter(items[i].Type)}.Read(ref reader);");
        }

        w.Line($"{Names.Formatting}.Json.JsonRead.Next(ref reader);");
        w.Line($"{Names.Formatting}.Json.JsonRead.Expect(ref reader, {Names.Json}.JsonTokenType.EndArray, {Names.Literal("the end of the " + items.Length + "-element array")});");
        w.Line($"return {Construct(o, items.Length)};");
        w.Close();
        w.Close();
    }

    private static string Construct(ObjectModel o, int count)
    {
        string args = string.Join(", ", Enumerable.Range(0, count).Select(i => "m" + i));
        // A value tuple's FullName is its (a, b) form, which only a tuple literal can construct.
        return o.IsValueType && o.FullName.StartsWith("(", StringComparison.Ordinal) ? $"({args})" : $"new {o.FullName}({args})";
    }
}
