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
        return Match(pattern, 0, name, 0);
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
        ArgumentException.ThrowIfNullOrEmpty(pattern);
        for (int i = 0; i < pattern.Length; i++)
        {
            if (pattern[i] == '[')
            {
                // A ']' right after '[' or '[!' is a member of the set, as in shells.
                int first = i + 1 < pattern.Length && pattern[i + 1] == '!' ? i + 2 : i + 1;
                int close = first + 1 <= pattern.Length ? pattern.IndexOf(']', first + 1) : -1;
                if (close < 0)
                {
                    throw new ArgumentException($"Glob pattern \"{pattern}\" has a '[' at {i} with no closing ']'.", nameof(pattern));
                }

                i = close;
            }
        }
    }

    private static bool Match(string p, int pi, string s, int si)
    {
        // Iterative with one backtrack point for the last '*': linear for typical patterns.
        int starP = -1, starS = -1;
        while (si < s.Length)
        {
            if (pi < p.Length && p[pi] == '*')
            {
                starP = pi++;
                starS = si;
                continue;
            }

            if (pi < p.Length && MatchOne(p, ref pi, s[si]))
            {
                si++;
                continue;
            }

            if (starP < 0)
            {
                return false;
            }

            pi = starP + 1;
            si = ++starS;
        }

        while (pi < p.Length && p[pi] == '*') pi++;
        return pi == p.Length;
    }

    private static bool MatchOne(string p, ref int pi, char c)
    {
        switch (p[pi])
        {
            case '?':
                pi++;
                return true;
            case '[':
                {
                    int i = pi + 1;
                    bool negate = p[i] == '!';
                    if (negate) i++;
                    int close = p.IndexOf(']', i + 1);
                    bool found = false;
                    for (int j = i; j < close; j++)
                    {
                        if (j + 2 < close && p[j + 1] == '-')
                        {
                            found |= c >= p[j] && c <= p[j + 2];
                            j += 2;
                        }
                        else
                        {
                            found |= c == p[j];
                        }
                    }

                    if (found == negate) return false;
                    pi = close + 1;
                    return true;
                }

            default:
                if (p[pi] != c) return false;
                pi++;
                return true;
        }
    }
}
