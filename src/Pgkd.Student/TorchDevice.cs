using TorchSharp;

namespace Pgkd.Student;

/// <summary>Where TorchSharp trains: CUDA when TorchSharp sees one (and it is not refused), CPU otherwise.</summary>
public static class TorchDevice
{
    /// <param name="preference">"auto" (default), "cpu" or "cuda".</param>
    public static torch.Device Resolve(string? preference = "auto")
    {
        var p = (preference ?? "auto").Trim().ToLowerInvariant();
        return p switch
        {
            "cpu" => torch.CPU,
            "cuda" when torch.cuda.is_available() => torch.CUDA,
            "cuda" => throw new InvalidOperationException("CUDA was asked for but TorchSharp sees no CUDA device (is a CUDA libtorch package built in? see LibTorchPackage)."),
            "auto" => torch.cuda.is_available() ? torch.CUDA : torch.CPU,
            _ => throw new ArgumentException($"Unknown device \"{preference}\": use auto, cpu or cuda.", nameof(preference)),
        };
    }

    /// <summary>Sets libtorch's intra-op thread count (process-wide) when <paramref name="threads"/> &gt; 0.</summary>
    public static void SetThreads(int threads)
    {
        if (threads > 0 && torch.get_num_threads() != threads)
            torch.set_num_threads(threads);
    }
}
