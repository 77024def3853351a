using System.Text;
using TorchSharp;
using Xunit;

namespace Pgkd.Student.Tests;

/// <summary>Point 5 (the libstdc++ fix) and point 4 (device, threads, backend package property).</summary>
public sealed class NativeTests
{
    [Fact]
    public void TorchSharp_loads_and_multiplies_matrices()
    {
        using var a = torch.tensor(new float[] { 1, 2, 3, 4 }, [2, 2]);
        using var b = torch.tensor(new float[] { 5, 6, 7, 8 }, [2, 2]);
        using var c = a.matmul(b);
        Assert.Equal(new float[] { 19, 22, 43, 50 }, c.data<float>().ToArray());
    }

    [Fact]
    public void Output_libLibTorchSharp_has_the_GLIBCXX_3_4_32_need_weak_exactly_where_the_system_lacks_it()
    {
        var output = Path.Combine(AppContext.BaseDirectory, "libLibTorchSharp.so");
        Assert.True(File.Exists(output), $"{output} missing");
        var flag = ElfVersionNeeds.FlagsOf(File.ReadAllBytes(output), "GLIBCXX_3.4.32");
        Assert.NotNull(flag); // TorchSharp 0.107.0 declares the need; if this fails, the package changed
        var systemHasIt = SystemLibstdcxxHas("GLIBCXX_3.4.32");
        const int weak = 0x2;
        Assert.Equal(!systemHasIt, (flag!.Value & weak) != 0);
        if (!systemHasIt)
        {
            // The NuGet cache keeps the original: the build wrote a patched copy.
            var cached = Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".nuget", "packages",
                "torchsharp", "0.107.0", "runtimes", "linux-x64", "native", "libLibTorchSharp.so");
            if (File.Exists(cached))
                Assert.Equal(0, ElfVersionNeeds.FlagsOf(File.ReadAllBytes(cached), "GLIBCXX_3.4.32")!.Value & weak);
        }
    }

    [Fact]
    public void Device_is_cpu_without_cuda_and_threads_are_configurable()
    {
        var device = TorchDevice.Resolve("auto");
        Assert.Equal(torch.cuda.is_available() ? DeviceType.CUDA : DeviceType.CPU, device.type);
        Assert.Equal(DeviceType.CPU, TorchDevice.Resolve("cpu").type);
        if (!torch.cuda.is_available())
            Assert.Throws<InvalidOperationException>(() => TorchDevice.Resolve("cuda"));
        var before = torch.get_num_threads();
        try
        {
            TorchDevice.SetThreads(1);
            Assert.Equal(1, torch.get_num_threads());
        }
        finally
        {
            torch.set_num_threads(before);
        }
    }

    [Fact]
    public async Task LibTorchPackage_property_chooses_the_backend_package()
    {
        var project = Repository.Path("src", "Pgkd.Student", "Pgkd.Student.csproj");
        Assert.Contains("libtorch-cpu-linux-x64 (default)", await PackageReferencesAsync(project));
        var cuda = await PackageReferencesAsync(project, "-p:LibTorchPackage=libtorch-cuda-12.8-linux-x64", "-p:LibTorchPackageVersion=2.10.0");
        Assert.Contains("libtorch-cuda-12.8-linux-x64 2.10.0", cuda);
        Assert.DoesNotContain("libtorch-cpu-linux-x64 (default)", cuda);
    }

    /// <summary>Evaluates the project (no restore, no build) and lists its libtorch PackageReference items.</summary>
    private static async Task<string[]> PackageReferencesAsync(string project, params string[] properties)
    {
        var msbuild = await ExternalProcess.RunAsync("dotnet", ["msbuild", project, "-nologo", "-getItem:PackageReference", .. properties],
            TimeSpan.FromMinutes(10)); // only bounds a hang: evaluation takes seconds
        Assert.True(msbuild.ExitCode == 0, msbuild.ToString());
        using var doc = System.Text.Json.JsonDocument.Parse(msbuild.StandardOutput);
        return doc.RootElement.GetProperty("Items").GetProperty("PackageReference").EnumerateArray()
            .Select(i => (Id: i.GetProperty("Identity").GetString()!, Override: i.TryGetProperty("VersionOverride", out var v) ? v.GetString() : ""))
            .Where(i => i.Id.StartsWith("libtorch", StringComparison.Ordinal))
            .Select(i => string.IsNullOrEmpty(i.Override) ? $"{i.Id} (default)" : $"{i.Id} {i.Override}")
            .ToArray();
    }

    private static bool SystemLibstdcxxHas(string version)
    {
        string[] candidates = ["/usr/lib/x86_64-linux-gnu/libstdc++.so.6", "/lib/x86_64-linux-gnu/libstdc++.so.6", "/usr/lib64/libstdc++.so.6"];
        var path = candidates.FirstOrDefault(File.Exists);
        return path is not null && Encoding.Latin1.GetString(File.ReadAllBytes(path)).Contains(version + "\0", StringComparison.Ordinal);
    }
}

/// <summary>Reads vna_flags of a version need from an ELF64 file's SHT_GNU_verneed section.</summary>
internal static class ElfVersionNeeds
{
    public static int? FlagsOf(byte[] b, string version)
    {
        var shoff = BitConverter.ToInt64(b, 0x28);
        int shentsize = BitConverter.ToUInt16(b, 0x3A), shnum = BitConverter.ToUInt16(b, 0x3C);
        for (var s = 0; s < shnum; s++)
        {
            var sh = (int)(shoff + (long)s * shentsize);
            if (BitConverter.ToUInt32(b, sh + 4) != 0x6ffffffe) continue;
            var vn = (int)BitConverter.ToInt64(b, sh + 0x18);
            var link = (int)BitConverter.ToUInt32(b, sh + 0x28);
            var strOff = (int)BitConverter.ToInt64(b, (int)(shoff + (long)link * shentsize) + 0x18);
            while (true)
            {
                int cnt = BitConverter.ToUInt16(b, vn + 2), aux = vn + (int)BitConverter.ToUInt32(b, vn + 8);
                for (var a = 0; a < cnt; a++)
                {
                    var name = strOff + (int)BitConverter.ToUInt32(b, aux + 8);
                    var end = Array.IndexOf(b, (byte)0, name);
                    if (Encoding.ASCII.GetString(b, name, end - name) == version) return BitConverter.ToUInt16(b, aux + 4);
                    aux += (int)BitConverter.ToUInt32(b, aux + 12);
                }
                var next = BitConverter.ToUInt32(b, vn + 12);
                if (next == 0) break;
                vn += (int)next;
            }
        }
        return null;
    }
}
