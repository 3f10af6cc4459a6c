// Compiled into the runtime and, as a linked file, into the source generator (which cannot
// reference the runtime), so both match config patterns by the very same rules.
namespace IpyRpc.Internal
{
    /// <summary>Shell-style glob matching: <c>*</c>, <c>?</c>, <c>[abc]</c>, <c>[a-z]</c>, <c>[!abc]</c>.</summary>
    internal static class GlobMatcher
    {
        /// <summary>What is wrong with <paramref name="pattern"/>, or <see langword="null"/> when it is well formed.</summary>
        public static string? Problem(string pattern)
        {
            if (pattern.Length == 0) return "it is empty";
            for (int i = 0; i < pattern.Length; i++)
            {
                if (pattern[i] != '[') continue;

                // A ']' right after '[' or '[!' is a member of the set, as in shells.
                int first = i + 1 < pattern.Length && pattern[i + 1] == '!' ? i + 2 : i + 1;
                int close = first + 1 <= pattern.Length ? pattern.IndexOf(']', first + 1) : -1;
                if (close < 0) return "the '[' at " + i + " has no closing ']'";
                i = close;
            }

            return null;
        }

        /// <summary>Whether <paramref name="name"/> matches the well-formed <paramref name="pattern"/>.</summary>
        public static bool IsMatch(string pattern, string name)
        {
            // Iterative with one backtrack point for the last '*': linear for typical patterns.
            int pi = 0, si = 0, starP = -1, starS = -1;
            while (si < name.Length)
            {
                if (pi < pattern.Length && pattern[pi] == '*')
                {
                    starP = pi++;
                    starS = si;
                    continue;
                }

                if (pi < pattern.Length && MatchOne(pattern, ref pi, name[si]))
                {
                    si++;
                    continue;
                }

                if (starP < 0) return false;
                pi = starP + 1;
                si = ++starS;
            }

            while (pi < pattern.Length && pattern[pi] == '*') pi++;
            return pi == pattern.Length;
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
}
