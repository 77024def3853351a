using System.Net;
using System.Net.Sockets;

namespace PgkdAspire.TestSupport;

/// <summary>Loopback ports nothing listens on, for test processes of their own (an AppHost's broker, Azurite, a closed gateway).</summary>
public static class FreePorts
{
    /// <summary>
    /// <paramref name="count"/> distinct ports: all bound at once (so the system hands out different ones), then released.
    /// Another process may take one before the caller binds it; on loopback in a test run that is rare enough.
    /// </summary>
    public static int[] Loopback(int count)
    {
        var listeners = Enumerable.Range(0, count).Select(_ => new TcpListener(IPAddress.Loopback, 0)).ToList();
        try
        {
            listeners.ForEach(l => l.Start());
            return listeners.Select(l => ((IPEndPoint)l.LocalEndpoint).Port).ToArray();
        }
        finally
        {
            listeners.ForEach(l => l.Stop());
        }
    }

    public static int One() => Loopback(1)[0];
}
