namespace IpyRpc.Formatting;

/// <summary>A cheap guess of a value's encoded size, so buffers for large arrays are allocated once instead of grown by doubling.</summary>
internal static class SizeHint
{
    public static int Of<T>(T value) => value switch
    {
        byte[] b => b.Length + 16,
        double[] d => (d.Length * 8) + 16,
        long[] l => (l.Length * 8) + 16,
        ulong[] u => (u.Length * 8) + 16,
        float[] f => (f.Length * 4) + 16,
        int[] i => (i.Length * 4) + 16,
        uint[] u => (u.Length * 4) + 16,
        string s => (s.Length * 3) + 8,
        _ => 256,
    };
}
