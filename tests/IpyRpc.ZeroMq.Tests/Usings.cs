global using Xunit;
global using IpyRpc.Tests;
