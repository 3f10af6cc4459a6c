namespace IpyRpc;

/// <summary>
/// Shell-style globs over function names: <c>*</c> any run of characters (dots included),
/// <c>?</c> one character, <c>[abc]</c>, <c>[a-z]</c> and <c>[!abc]</c> one character of (or
/// not of) a set. Everything else matches itself.
/// </summary>
public static class Glob
{
    /// <summary>Whether <paramref name="name"/> matches <paramref name="pattern"/>.</summary>
    /// <exception cref="ArgumentException">The pattern has an unclosed <c>[</c>.</exception>
    public static bool IsMatch(string pattern, string name)
    {
        Validate(pattern);
        return Internal.GlobMatcher.IsMatch(pattern, name);
    }

    /// <summary>Whether <paramref name="pattern"/> has any wildcard.</summary>
    public static bool IsLiteral(string pattern) => pattern.IndexOfAny(['*', '?', '[']) < 0;

    /// <summary>How specific a pattern is: the number of characters it matches literally. An exact name is the most specific of all.</summary>
    public static int Specificity(string pattern)
    {
        if (IsLiteral(pattern))
        {
            return int.MaxValue;
        }

        int literal = 0;
        for (int i = 0; i < pattern.Length; i++)
        {
            switch (pattern[i])
            {
                case '*':
                case '?':
                    break;
                case '[':
                    i = pattern.IndexOf(']', i + 2);
                    break;
                default:
                    literal++;
                    break;
            }
        }

        return literal;
    }

    /// <summary>Checks a pattern is well formed.</summary>
    /// <exception cref="ArgumentException">It is not.</exception>
    public static void Validate(string pattern)
    {
        ArgumentNullException.ThrowIfNull(pattern);
        if (Internal.GlobMatcher.Problem(pattern) is { } problem)
        {
            throw new ArgumentException($"Glob pattern \"{pattern}\" is not valid: {problem}.", nameof(pattern));
        }
    }
}
