using Pgkd.Benchmarks;

// ./build.sh bench [options]: the paper's tables on a dataset folder, written to docs/results.md (see BenchmarkOptions.Usage).
// A serving-memory child (one configuration in a fresh process; see Serving.ServingMemoryBenchmark) takes no options.
if (args is [Pgkd.Benchmarks.Serving.ServingMemoryBenchmark.ChildArgument, var spec])
    return await Pgkd.Benchmarks.Serving.ServingMemoryBenchmark.ChildAsync(spec);
var root = RepositoryRoot();
BenchmarkOptions options;
try
{
    options = BenchmarkOptions.Parse(args, root);
}
catch (BenchmarkUsageException e)
{
    if (e.Problem is not null) Console.Error.WriteLine($"bench: {e.Problem}");
    Console.Error.WriteLine(BenchmarkOptions.Usage);
    return e.Problem is null ? 0 : 2;
}

using var cancel = new CancellationTokenSource();
Console.CancelKeyPress += (_, e) => { e.Cancel = true; cancel.Cancel(); };
if (options.ReportOnly)
{
    ResultsDocument.WriteFragment(options.OutputDirectory, Pgkd.Benchmarks.Quality.QualityBenchmark.FragmentName(options),
        Pgkd.Benchmarks.Quality.QualityBenchmark.RenderStored(options));
    Console.Error.WriteLine($"[bench] wrote {ResultsDocument.Compose(options.OutputDirectory)} from stored results");
    return 0;
}
foreach (var section in options.Sections)
{
    Console.Error.WriteLine($"[bench] section {section}");
    var markdown = section switch
    {
        "quality" => await Pgkd.Benchmarks.Quality.QualityBenchmark.RunAsync(options, cancel.Token),
        "speed" => await Pgkd.Benchmarks.Speed.SpeedBenchmark.RunAsync(options, cancel.Token),
        "anatomy" => await Pgkd.Benchmarks.Anatomy.RoundAnatomyBenchmark.RunAsync(options, cancel.Token),
        "int8" => await Pgkd.Benchmarks.Int8.Int8Benchmark.RunAsync(options, cancel.Token),
        "batching" => await Pgkd.Benchmarks.Speed.BatchingBenchmark.RunAsync(options, cancel.Token),
        "engine-load" => await Pgkd.Benchmarks.Serving.EngineLoadBenchmark.RunAsync(options, cancel.Token),
        "serving-memory" => await Pgkd.Benchmarks.Serving.ServingMemoryBenchmark.RunAsync(options, cancel.Token),
        "emulator" => await Pgkd.Benchmarks.Emulator.EmulatorWarmUpBenchmark.RunAsync(options, cancel.Token),
        _ => throw new InvalidOperationException(section),
    };
    ResultsDocument.WriteFragment(options.OutputDirectory, section == "quality" ? Pgkd.Benchmarks.Quality.QualityBenchmark.FragmentName(options) : section, markdown);
    Console.WriteLine(markdown);
}
Console.Error.WriteLine($"[bench] wrote {ResultsDocument.Compose(options.OutputDirectory)}");
return 0;

static string RepositoryRoot()
{
    for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        if (File.Exists(Path.Combine(dir.FullName, "PgkdAspire.sln"))) return dir.FullName;
    return Directory.GetCurrentDirectory();
}
