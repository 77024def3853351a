using Azure.Identity;
using Microsoft.Extensions.Hosting;

namespace PgkdAspire.DeploymentTests;

/// <summary>Cloud: a bare blob endpoint means managed identity. Local: Azurite's connection string with its key.</summary>
public sealed class AzureCredentialTests
{
    [Fact]
    public void A_bare_endpoint_authenticates_with_a_token_credential_not_a_key()
    {
        var client = PgkdBlobExtensions.CreateClient("https://stexample.blob.core.windows.net/");
        Assert.Equal("stexample", client.AccountName);
        Assert.False(client.CanGenerateAccountSasUri, "no shared key: DefaultAzureCredential signs requests");
    }

    [Fact]
    public void A_connection_string_with_a_key_is_used_as_it_is()
    {
        var client = PgkdBlobExtensions.CreateClient(
            "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==;BlobEndpoint=http://127.0.0.1:10000/devstoreaccount1;");
        Assert.Equal("devstoreaccount1", client.AccountName);
        Assert.True(client.CanGenerateAccountSasUri);
        Assert.Equal(new Uri("http://127.0.0.1:10000/devstoreaccount1"), client.Uri);
    }

    [Fact]
    public void The_managed_identity_credential_type_is_available_to_services()
    {
        // DefaultAzureCredential tries environment, workload identity, then managed identity (AZURE_CLIENT_ID from azd).
        Assert.NotNull(new DefaultAzureCredential(new DefaultAzureCredentialOptions { ManagedIdentityClientId = "00000000-0000-0000-0000-000000000000" }));
    }
}
