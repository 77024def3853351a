using System.Xml.Linq;
using Azure;
using Azure.Storage.Blobs;
using Microsoft.AspNetCore.DataProtection.Repositories;

namespace Pgkd.Gateway.Security;

/// <summary>
/// The Data Protection key ring in blob storage, one blob per key, so that gateway replicas share the keys that seal
/// session cookies. (Azure.Extensions.AspNetCore.DataProtection.Blobs, which keeps the ring in one blob, is not served by
/// the registry these machines reach.) Keys are written once and never changed; the framework rolls new ones itself.
/// Storage encrypts them at rest; only the gateway's identity can read the container.
/// </summary>
public sealed class BlobKeyRing(BlobServiceClient blobs) : IXmlRepository
{
    public const string Container = "gateway-keys";
    private const string Prefix = "data-protection/";

    private readonly BlobContainerClient _container = blobs.GetBlobContainerClient(Container);

    public IReadOnlyCollection<XElement> GetAllElements()
    {
        if (!_container.Exists().Value) return [];
        var elements = new List<XElement>();
        foreach (var item in _container.GetBlobs(Azure.Storage.Blobs.Models.BlobTraits.None, Azure.Storage.Blobs.Models.BlobStates.None, Prefix, CancellationToken.None))
            elements.Add(XElement.Parse(_container.GetBlobClient(item.Name).DownloadContent().Value.Content.ToString()));
        return elements;
    }

    public void StoreElement(XElement element, string friendlyName)
    {
        _container.CreateIfNotExists();
        // Key names are unique (key-{guid}); two replicas rolling a key at once simply add two keys.
        var name = $"{Prefix}{(string.IsNullOrWhiteSpace(friendlyName) ? Guid.NewGuid().ToString("N") : friendlyName)}.xml";
        try
        {
            _container.GetBlobClient(name).Upload(BinaryData.FromString(element.ToString(SaveOptions.DisableFormatting)), overwrite: false);
        }
        catch (RequestFailedException e) when (e.Status == 409)
        {
            // Already stored by an earlier attempt of this same key.
        }
    }
}
