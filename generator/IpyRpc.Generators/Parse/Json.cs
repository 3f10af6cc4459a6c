using System;
using System.Collections.Generic;
using System.Globalization;
using System.Text;

namespace IpyRpc.Generators.Parse;

/// <summary>A JSON value as the schema reader needs it: objects keep their order, numbers their text.</summary>
internal abstract class JsonNode
{
    /// <summary>Where the value starts in the text (for diagnostics).</summary>
    public int Position { get; set; }
}

internal sealed class JsonObject : JsonNode
{
    public readonly List<KeyValuePair<string, JsonNode>> Properties = new();

    public JsonNode? this[string name]
    {
        get
        {
            // A repeated name means its last value, as most JSON readers take it.
            for (int i = Properties.Count - 1; i >= 0; i--)
            {
                if (Properties[i].Key == name) return Properties[i].Value;
            }

            return null;
        }
    }

    public string? String(string name) => this[name] is JsonString s ? s.Value : null;

    public bool Bool(string name) => this[name] is JsonLiteral { Text: "true" };
}

internal sealed class JsonArray : JsonNode
{
    public readonly List<JsonNode> Items = new();
}

internal sealed class JsonString : JsonNode
{
    public JsonString(string value) => Value = value;

    public string Value { get; }
}

/// <summary>A number, <c>true</c>, <c>false</c> or <c>null</c>, as written.</summary>
internal sealed class JsonLiteral : JsonNode
{
    public JsonLiteral(string text) => Text = text;

    public string Text { get; }
}

/// <summary>The text is not JSON; <see cref="Position"/> is where reading stopped.</summary>
internal sealed class JsonSyntaxException : Exception
{
    public JsonSyntaxException(string message, int position) : base(message) => Position = position;

    public int Position { get; }
}

/// <summary>
/// A small strict JSON reader (RFC 8259) for schema files: the generator targets netstandard2.0 and
/// ships alone, so it cannot bring System.Text.Json with it.
/// </summary>
internal sealed class JsonReader
{
    private const int MaxDepth = 256;
    private readonly string _text;
    private int _at;

    private JsonReader(string text) => _text = text;

    public static JsonNode Parse(string text)
    {
        var reader = new JsonReader(text);
        if (reader._text.Length > 0 && reader._text[0] == '\uFEFF') reader._at = 1;
        JsonNode value = reader.Value(0);
        reader.Space();
        if (reader._at < text.Length) throw new JsonSyntaxException("unexpected text after the document", reader._at);
        return value;
    }

    private JsonNode Value(int depth)
    {
        if (depth > MaxDepth) throw new JsonSyntaxException("nested too deeply", _at);
        Space();
        if (_at >= _text.Length) throw new JsonSyntaxException("the document ends too early", _at);
        int start = _at;
        JsonNode node;
        switch (_text[_at])
        {
            case '{':
                node = Object(depth);
                break;
            case '[':
                node = Array(depth);
                break;
            case '"':
                node = new JsonString(String());
                break;
            default:
                node = Literal();
                break;
        }

        node.Position = start;
        return node;
    }

    private JsonObject Object(int depth)
    {
        var result = new JsonObject();
        _at++;
        Space();
        if (Peek() == '}')
        {
            _at++;
            return result;
        }

        while (true)
        {
            Space();
            if (Peek() != '"') throw new JsonSyntaxException("expected a property name in quotes", _at);
            string name = String();
            Space();
            Expect(':');
            result.Properties.Add(new KeyValuePair<string, JsonNode>(name, Value(depth + 1)));
            Space();
            if (Peek() == ',')
            {
                _at++;
                continue;
            }

            Expect('}');
            return result;
        }
    }

    private JsonArray Array(int depth)
    {
        var result = new JsonArray();
        _at++;
        Space();
        if (Peek() == ']')
        {
            _at++;
            return result;
        }

        while (true)
        {
            result.Items.Add(Value(depth + 1));
            Space();
            if (Peek() == ',')
            {
                _at++;
                continue;
            }

            Expect(']');
            return result;
        }
    }

    private string String()
    {
        _at++; // the opening quote
        var text = new StringBuilder();
        while (true)
        {
            if (_at >= _text.Length) throw new JsonSyntaxException("a string is not closed", _at);
            char c = _text[_at++];
            if (c == '"') return text.ToString();
            if (c < ' ') throw new JsonSyntaxException("a control character inside a string must be escaped", _at - 1);
            if (c != '\\')
            {
                text.Append(c);
                continue;
            }

            if (_at >= _text.Length) throw new JsonSyntaxException("a string is not closed", _at);
            char e = _text[_at++];
            switch (e)
            {
                case '"': text.Append('"'); break;
                case '\\': text.Append('\\'); break;
                case '/': text.Append('/'); break;
                case 'b': text.Append('\b'); break;
                case 'f': text.Append('\f'); break;
                case 'n': text.Append('\n'); break;
                case 'r': text.Append('\r'); break;
                case 't': text.Append('\t'); break;
                case 'u':
                    if (_at + 4 > _text.Length || !int.TryParse(_text.Substring(_at, 4), NumberStyles.HexNumber, CultureInfo.InvariantCulture, out int code))
                    {
                        throw new JsonSyntaxException("\\u needs four hex digits", _at);
                    }

                    text.Append((char)code);
                    _at += 4;
                    break;
                default:
                    throw new JsonSyntaxException($"'\\{e}' is not a JSON escape", _at - 2);
            }
        }
    }

    private JsonLiteral Literal()
    {
        int start = _at;
        while (_at < _text.Length && (char.IsLetterOrDigit(_text[_at]) || _text[_at] is '-' or '+' or '.')) _at++;
        string word = _text.Substring(start, _at - start);
        if (word is "true" or "false" or "null") return new JsonLiteral(word);
        if (word.Length > 0 && (word[0] == '-' || char.IsDigit(word[0]))
            && double.TryParse(word, NumberStyles.Float, CultureInfo.InvariantCulture, out _))
        {
            return new JsonLiteral(word);
        }

        throw new JsonSyntaxException(word.Length == 0 ? $"unexpected '{_text[start]}'" : $"'{word}' is not a JSON value", start);
    }

    private void Space()
    {
        while (_at < _text.Length && _text[_at] is ' ' or '\t' or '\n' or '\r') _at++;
    }

    private char Peek() => _at < _text.Length ? _text[_at] : '\0';

    private void Expect(char c)
    {
        if (Peek() != c) throw new JsonSyntaxException(_at < _text.Length ? $"expected '{c}' but found '{_text[_at]}'" : $"expected '{c}' but the document ends", _at);
        _at++;
    }
}
