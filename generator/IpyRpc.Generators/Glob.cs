namespace IpyRpc.Generators;

/// <summary>The runtime's glob rules (<c>*</c>, <c>?</c>, <c>[...]</c>, <c>[!...]</c>), repeated here because a generator cannot reference the runtime.</summary>
internal static class Glob
{
    public static string? Problem(string pattern)
    {
        if (pattern.Length == 0) return "it is empty";
        for (int i = 0; i < pattern.Length; i++)
        {
            if (pattern[i] != '[') continue;
            int first = i + 1 < pattern.Length && pattern[i + 1] == '!' ? i + 2 : i + 1;
            int close = first + 1 <= pattern.Length ? pattern.IndexOf(']', System.Math.Min(first + 1, pattern.Length)) : -1;
            if (close < 0) return $"the '[' at {i} has no closing ']'";
            i = close;
        }

        return null;
    }

    public static bool IsMatch(string p, string s)
    {
        int pi = 0, si = 0, starP = -1, starS = -1;
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

            if (starP < 0) return false;
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
            default:
                if (p[pi] != c) return false;
                pi++;
                return true;
        }
    }
}
