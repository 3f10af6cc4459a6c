using System.Text;
using IpyRpc.Formatting;
using IpyRpc.MessagePack;
using IpyRpc.Protocol;

namespace IpyRpc.Tests;

public sealed class NdArrayTests
{
    [Theory]
    [InlineData(Serialization.MessagePack)]
    [InlineData(Serialization.Json)]
    public async Task MatricesAndCubesRoundTripThroughTheGeneratedInvokerAndProxy(Serialization serialization)
    {
        await using InProcess p = await InProcess.StartAsync(serialization, s => s.Register(typeof(MatrixFunctions)));
        double[,] m = { { 1, 2, 3 }, { 4, 5, 6 } };
        double[,] t = await p.Client.Proxy<MatrixFunctionsClient>().Nd.Transpose(m);
        Assert.Equal(new double[,] { { 1, 4 }, { 2, 5 }, { 3, 6 } }, t);

        int[,,] cube = new int[2, 3, 4];
        int n = 0;
        for (int i = 0; i < 2; i++) for (int j = 0; j < 3; j++) for (int k = 0; k < 4; k++) cube[i, j, k] = n++;
        Assert.Equal("2x3x4 sum 276", await p.Client.Proxy<MatrixFunctionsClient>().Nd.Describe(cube));
        Assert.Equal(new double[0, 5], await p.Client.Proxy<MatrixFunctionsClient>().Nd.Transpose(new double[5, 0])); // empty, shape kept
    }

    [Fact]
    public void MessagePackCarriesDtypeShapeAndOneRawRowMajorBlock()
    {
        var buffer = new System.Buffers.ArrayBufferWriter<byte>();
        var writer = new MessagePackWriter(buffer);
        Formatters.Int32Array2D.Write(ref writer, new[,] { { 1, 2, 3 }, { 4, 5, 6 } });
        var reader = new MessagePackReader(buffer.WrittenSpan);
        ReadOnlySpan<byte> ext = reader.ReadExtension(out sbyte type);
        Assert.Equal(WireExtensions.NdArray, type);
        Assert.Equal("<i4", Encoding.ASCII.GetString(ext.Slice(1, ext[0])));
        Assert.Equal(2, ext[4]); // rank
        Assert.Equal(2u, BitConverter.ToUInt32(ext.Slice(5, 4)));
        Assert.Equal(3u, BitConverter.ToUInt32(ext.Slice(9, 4)));
        Assert.Equal(new[] { 1, 2, 3, 4, 5, 6 }, System.Runtime.InteropServices.MemoryMarshal.Cast<byte, int>(ext[13..]).ToArray());
    }

    [Theory]
    [InlineData("""{"type":"ndarray","dtype":"<f8","shape":[2,2],"data":[[1,2],[3,4]]}""")]
    [InlineData("""{"dtype":"f8","shape":[2,2],"data":[1,2,3,4]}""")]
    [InlineData("""[[1,2],[3,4]]""")]
    public async Task JsonCallersMaySendTheSeedsShapeFlatDataOrNestedArrays(string matrix)
    {
        await using InProcess p = await InProcess.StartAsync(Serialization.Json, s => s.Register(typeof(MatrixFunctions)));
        var args = System.Text.Json.JsonDocument.Parse(matrix).RootElement;
        double[,] t = await p.Client.CallAsync<double[,]>("nd.transpose", args);
        Assert.Equal(new double[,] { { 1, 3 }, { 2, 4 } }, t);
    }

    [Fact]
    public void AnNdarrayReadAsPlainDataWritesAsTheSameJsonItsOwnFormatterWrites()
    {
        // What the command and JSON-RPC print for an array that arrived in MessagePack: the seeds' ndarray object.
        static string Json<T>(IpyRpcFormatter<T> formatter, T value)
        {
            var buffer = new System.Buffers.ArrayBufferWriter<byte>();
            using (var w = new System.Text.Json.Utf8JsonWriter(buffer)) formatter.Write(w, value);
            return Encoding.UTF8.GetString(buffer.WrittenSpan);
        }

        static string ThroughPlainData<T>(IpyRpcFormatter<T> formatter, T value)
        {
            var buffer = new System.Buffers.ArrayBufferWriter<byte>();
            var w = new MessagePackWriter(buffer);
            formatter.Write(ref w, value);
            var r = new MessagePackReader(buffer.WrittenSpan.ToArray());
            return Json(Formatters.Object, Formatters.Object.Read(ref r));
        }

        double[,] m = { { 1.5, -2 }, { double.NaN, double.PositiveInfinity } };
        Assert.Equal(Json(Formatters.DoubleArray2D, m), ThroughPlainData(Formatters.DoubleArray2D, m));
        int[,,] cube = { { { 1, -2 }, { 3, 4 } }, { { 5, 6 }, { 7, int.MinValue } } };
        Assert.Equal(Json(Formatters.Int32Array3D, cube), ThroughPlainData(Formatters.Int32Array3D, cube));
        float[,] tenths = { { 0.1f, 0.7f }, { float.NegativeInfinity, 3e-8f } };
        Assert.Equal(Json(Formatters.SingleArray2D, tenths), ThroughPlainData(Formatters.SingleArray2D, tenths));
        float[,] empty = new float[0, 3];
        Assert.Equal(Json(Formatters.SingleArray2D, empty), ThroughPlainData(Formatters.SingleArray2D, empty));
        Assert.Contains("\"type\":\"ndarray\"", ThroughPlainData(Formatters.DoubleArray2D, m));
    }

    [Theory]
    [InlineData("""[[1,2],[3]]""", "rectangular")]
    [InlineData("""{"dtype":"<i4","shape":[2,2],"data":[1,2,3,4]}""", "dtype")]
    [InlineData("""{"shape":[3,2],"data":[1,2,3,4]}""", "needs 6 values")]
    public async Task BadArraysAreInvalidArgumentsThatSayWhy(string matrix, string why)
    {
        await using InProcess p = await InProcess.StartAsync(Serialization.Json, s => s.Register(typeof(MatrixFunctions)));
        var args = System.Text.Json.JsonDocument.Parse(matrix).RootElement;
        var e = await Assert.ThrowsAnyAsync<IpyRpcException>(() => p.Client.CallAsync<double[,]>("nd.transpose", args));
        Assert.Equal(ErrorCodes.InvalidArguments, e.Code);
        Assert.Contains(why, e.Message);
    }
}
