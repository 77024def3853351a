using Pgkd.Core.Teacher;
using Pgkd.TeacherTokens;

namespace Pgkd.Gateway.Runs;

/// <summary>
/// The most a submitted run can cost (<see cref="CostForecaster"/>), for the teacher the generator will use: its model
/// (<c>Teacher:Model</c>, which the AppHost sets from the teacher's deployment), tokenizer, prices, samples per request
/// and output limit. Prices and sizes are the generator's own (<c>src/Pgkd.Generator/appsettings.json</c>, copied next
/// to the gateway as <c>generator.appsettings.json</c>), so the forecast prices tokens as the run will; the gateway's
/// own <c>Teacher:*</c> and <c>Generator:*</c> settings override them.
/// </summary>
public sealed class RunForecaster
{
    public const string GeneratorSettingsFile = "generator.appsettings.json";

    /// <summary>The model the infrastructure deploys (infra/resources.bicep), when nothing says otherwise.</summary>
    public const string DefaultModel = "gpt-4o-mini";

    private readonly string _model;
    private readonly TeacherPriceTable _prices;
    private readonly int _samplesPerRequest;
    private readonly int? _maxOutputTokens;

    public RunForecaster(IConfiguration configuration)
    {
        var settings = new ConfigurationBuilder()
            .AddJsonFile(Path.Combine(AppContext.BaseDirectory, GeneratorSettingsFile), optional: true)
            .AddConfiguration(configuration)
            .Build();
        _model = settings["Teacher:Model"] is { Length: > 0 } model ? model : DefaultModel;
        _prices = new TeacherPriceTable(settings.GetSection("Teacher:Prices").Get<Dictionary<string, TokenPrice>>() ?? []);
        _samplesPerRequest = settings.GetValue("Generator:SamplesPerRequest", 16);
        _maxOutputTokens = settings.GetValue<int?>("Teacher:MaxOutputTokens");
    }

    public CostForecast Forecast(RunSubmission submission)
    {
        var tokenizer = TeacherTokenizer.ForModel(_model);
        return CostForecaster.Forecast(new CostForecastInput
        {
            Configuration = submission.Configuration,
            Labels = submission.Labels,
            TaskDescription = submission.TaskDescription,
            Train = submission.Train.Examples,
            Validation = submission.Validation.Examples,
            Model = _model,
            Tokenizer = tokenizer.Description,
            CountTokens = tokenizer.Counter,
            Price = _prices.PriceOf(_model),
            HasPrice = _prices.HasPrice(_model),
            SamplesPerRequest = _samplesPerRequest,
            MaxOutputTokens = _maxOutputTokens,
        });
    }
}
