// IPYRPC0001 Error at Source0.cs:9:57: Parameter 's' of 'Wrong.TakesStream' has type 'Stream', which IpyRpc cannot serialize: Stream is a framework type without a wire format; use one of the supported types or a record of them
// IPYRPC0002 Error at Source0.cs:12:34: 'Wrong.ReturnsStream' returns 'Stream', which IpyRpc cannot serialize: Stream is a framework type without a wire format; use one of the supported types or a record of them
// IPYRPC0003 Error at Source0.cs:18:47: The exported name 'twice' is used by both 'Wrong.First' and 'Wrong.Second'; give one of them another name with [IpyRpcExport("...")]
// IPYRPC0004 Error at Source0.cs:21:53: 'Wrong.ByRef' cannot be exported: parameter 'x' is ref; remote calls pass values one way, so return the value instead
// IPYRPC0005 Error at Source0.cs:24:39: 'Wrong.Hidden' cannot be exported because the method is private; generated code needs it public or internal
// IPYRPC0007 Warning at Source0.cs:26:38: 'Wrong.Undocumented' has no <summary>; clients see the doc comment as the function's help text
// IPYRPC0008 Warning at Source0.cs:34:51: The config pattern 'nothing_*' matches none of the exported functions or events (Undocumented, twice)
// IPYRPC0009 Error at Source0.cs:29:6: 'rpc.discover' is not a valid exported name: names starting with 'rpc.' are reserved by JSON-RPC
// IPYRPC0010 Error at Source0.cs:34:74: The config pattern '[unclosed' is not a valid glob: the '[' at 0 has no closing ']'
// IPYRPC0011 Error at Source0.cs:31:37: The event 'Wrong.NotAnEvent' cannot be published: it must be a static field or property of type IpyRpcEvent<T>
// IPYRPC0012 Error at Broken.ipyrpc.json:3:15: No client is generated from Broken.ipyrpc.json: it is not valid JSON: unexpected ','
// IPYRPC0013 Warning at Odd.ipyrpc.json:2:54: 'odd' in Odd.ipyrpc.json gets no typed method: a schema has no "x-ipyrpc" annotation, so how its value travels is unknown (the server's IpyRpc may be older than this generator); call it with CallAsync, or write the schema again from a current server
// IPYRPC0014 Warning at Odd.ipyrpc.json:3:59: 'odd.happened' in Odd.ipyrpc.json gets no typed event: a schema has no "x-ipyrpc" annotation, so how its value travels is unknown (the server's IpyRpc may be older than this generator); subscribe to it by name (client.SubscribeAsync("odd.happened", ...)), or write the schema again from a current server
