using System.Diagnostics;
using OpenTelemetry;

namespace Microsoft.Extensions.Hosting;

/// <summary>
/// Storage calls whose "error" status is an answer the caller asked for: <c>Exists</c> and <c>DeleteIfExists</c> are
/// answered 404 when there is nothing, <c>CreateIfNotExists</c> 409 when there is, and a caller that declares the statuses
/// it handles (<see cref="ExpectedStatusTag"/> on an enclosing span: a write-once upload's 409, a manifest update's
/// lost race, 412) gets them as answers. The Azure SDK and the HTTP instrumentation mark all of these as errors, which
/// paints every clean round red on the dashboard; this processor clears the status of exactly those spans, and of the
/// SDK operation span above each, before export. Any other failure stays an error.
/// </summary>
public sealed class ExpectedAnswerProcessor : BaseProcessor<Activity>
{
    /// <summary>A span attribute listing the HTTP statuses its caller handles, e.g. <c>"409 412"</c>.</summary>
    public const string ExpectedStatusTag = "pgkd.expected_http_status";

    private const string ClearedChildProperty = "pgkd.expected_answer_below";
    private const int MaxAncestors = 8;

    public override void OnEnd(Activity activity)
    {
        if (activity.Status != ActivityStatusCode.Error) return;
        var expected = StatusCode(activity) is { } status ? IsExpected(activity, status) : activity.GetCustomProperty(ClearedChildProperty) is true;
        if (!expected) return;
        activity.SetStatus(ActivityStatusCode.Unset);
        activity.SetTag("error.type", null);
        activity.SetTag("otel.status_code", null);
        activity.SetTag("otel.status_description", null);
        // The SDK's operation span (BlobClient.Upload, BlobBaseClient.Exists) ends after its HTTP span and carries no status code.
        activity.Parent?.SetCustomProperty(ClearedChildProperty, true);
    }

    private static int? StatusCode(Activity activity)
    {
        var value = activity.GetTagItem("http.response.status_code") ?? activity.GetTagItem("http.status_code");
        return value switch
        {
            int i => i,
            long l => (int)l,
            string s when int.TryParse(s, out var parsed) => parsed,
            _ => null,
        };
    }

    private static bool IsExpected(Activity activity, int status)
    {
        var depth = 0;
        for (var span = activity; span is not null && depth < MaxAncestors; span = span.Parent, depth++)
        {
            var name = span.DisplayName;
            if (status == 404 && (name.EndsWith(".Exists", StringComparison.Ordinal) || name.EndsWith(".DeleteIfExists", StringComparison.Ordinal))) return true;
            if (status == 409 && name.EndsWith(".CreateIfNotExists", StringComparison.Ordinal)) return true;
            if (span.GetTagItem(ExpectedStatusTag) is string declared
                && declared.Split(' ', StringSplitOptions.RemoveEmptyEntries).Contains(status.ToString(System.Globalization.CultureInfo.InvariantCulture)))
                return true;
        }
        return false;
    }
}
