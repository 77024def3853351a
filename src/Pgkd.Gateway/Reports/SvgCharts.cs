using System.Globalization;
using System.Net;
using System.Text;

namespace Pgkd.Gateway.Reports;

/// <summary>One named series of a chart; a null value is a gap (a round without that figure yet).</summary>
public sealed record ChartSeries(string Name, IReadOnlyList<double?> Values);

/// <summary>
/// Small server-side SVG charts for the report pages. Why on the server: the pages must work with no internet (no
/// CDN script) and without JavaScript. Pure functions of their input; every mark carries <c>data-*</c> attributes
/// (series, category, value) so tests can check what was drawn, and a <c>&lt;title&gt;</c> tooltip for people.
/// </summary>
public static class SvgCharts
{
    public const int Width = 480;
    public const int Height = 260;
    private const int Left = 56, Right = 14, Top = 34, Bottom = 34;
    private const int PlotWidth = Width - Left - Right, PlotHeight = Height - Top - Bottom;

    /// <summary>Colour-blind-safe palette (Okabe-Ito), cycled by series index.</summary>
    public static readonly IReadOnlyList<string> Palette =
        ["#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000"];

    /// <summary>
    /// A line per series over the categories (rounds): a <c>circle.point</c> per non-null value and a
    /// <c>polyline.line</c> through them. The y range is [<paramref name="yMin"/>, <paramref name="yMax"/>] when
    /// given, otherwise the data's range.
    /// </summary>
    public static string Line(string id, string title, IReadOnlyList<string> categories, IReadOnlyList<ChartSeries> series,
        string valueFormat = "0.000", double? yMin = null, double? yMax = null)
    {
        var values = series.SelectMany(s => s.Values).OfType<double>().Where(double.IsFinite).ToList();
        var (low, high) = Range(values, yMin, yMax);
        var svg = Open(id, "line", title, series.Select(s => s.Name).ToList());
        YAxis(svg, low, high, valueFormat);
        XAxis(svg, categories, i => Left + (categories.Count == 1 ? PlotWidth / 2.0 : PlotWidth * i / (double)(categories.Count - 1)));
        for (var s = 0; s < series.Count; s++)
        {
            var color = Palette[s % Palette.Count];
            var points = new List<(double X, double Y, int I, double V)>();
            for (var i = 0; i < categories.Count && i < series[s].Values.Count; i++)
            {
                if (series[s].Values[i] is not { } v || !double.IsFinite(v)) continue;
                var x = Left + (categories.Count == 1 ? PlotWidth / 2.0 : PlotWidth * i / (double)(categories.Count - 1));
                points.Add((x, Y(v, low, high), i, v));
            }
            // Every other series dashed, so two lines that coincide (accuracy and macro-F1 often do) both stay visible.
            var dash = s % 2 == 1 ? " stroke-dasharray=\"6 4\"" : "";
            if (points.Count >= 2)
                svg.Append($"<polyline class=\"line\" data-series=\"{Enc(series[s].Name)}\" fill=\"none\" stroke=\"{color}\" stroke-width=\"2\"{dash} points=\"")
                    .AppendJoin(' ', points.Select(p => $"{F(p.X)},{F(p.Y)}")).Append("\"/>");
            foreach (var p in points)
                svg.Append($"<circle class=\"point\" data-series=\"{Enc(series[s].Name)}\" data-category=\"{Enc(categories[p.I])}\" data-value=\"{F(p.V, "R")}\" ")
                    .Append($"cx=\"{F(p.X)}\" cy=\"{F(p.Y)}\" r=\"4\" fill=\"{color}\"><title>{Enc(series[s].Name)}, {Enc(categories[p.I])}: {Enc(Format(p.V, valueFormat))}</title></circle>");
        }
        return Close(svg);
    }

    /// <summary>
    /// Grouped bars: per category (round) one <c>rect.bar</c> per series, zero-based y axis. Every (category, series)
    /// pair gets a rect, a zero value a zero-height one, so the count of bars is always categories × series.
    /// </summary>
    public static string Bars(string id, string title, IReadOnlyList<string> categories, IReadOnlyList<ChartSeries> series,
        string valueFormat = "0")
    {
        var values = series.SelectMany(s => s.Values).OfType<double>().Where(double.IsFinite).ToList();
        var high = NiceMax(values.Count == 0 ? 0 : values.Max(), integers: !valueFormat.Contains('.'));
        var svg = Open(id, "bar", title, series.Select(s => s.Name).ToList());
        YAxis(svg, 0, high, valueFormat);
        var group = categories.Count == 0 ? PlotWidth : PlotWidth / (double)categories.Count;
        XAxis(svg, categories, i => Left + group * (i + 0.5));
        var barWidth = group * 0.8 / Math.Max(1, series.Count);
        for (var i = 0; i < categories.Count; i++)
            for (var s = 0; s < series.Count; s++)
            {
                var v = i < series[s].Values.Count && series[s].Values[i] is { } d && double.IsFinite(d) ? Math.Max(0, d) : 0;
                var top = Y(v, 0, high);
                var x = Left + group * i + group * 0.1 + barWidth * s;
                svg.Append($"<rect class=\"bar\" data-series=\"{Enc(series[s].Name)}\" data-category=\"{Enc(categories[i])}\" data-value=\"{F(v, "R")}\" ")
                    .Append($"x=\"{F(x)}\" y=\"{F(top)}\" width=\"{F(Math.Max(1, barWidth - 1))}\" height=\"{F(Top + PlotHeight - top)}\" fill=\"{Palette[s % Palette.Count]}\">")
                    .Append($"<title>{Enc(series[s].Name)}, {Enc(categories[i])}: {Enc(Format(v, valueFormat))}</title></rect>");
            }
        return Close(svg);
    }

    /// <summary>
    /// A confusion matrix: <c>rect.cell</c> per (true, predicted) pair, shaded by the share of its row (so a class
    /// with few examples is as readable as a big one), the count written in the cell, the diagonal outlined.
    /// </summary>
    public static string Heatmap(string id, string title, IReadOnlyList<string> labels, IReadOnlyList<IReadOnlyList<int>> matrix)
    {
        var n = labels.Count;
        const int rowLabelWidth = 110, headerHeight = 84;
        var cell = Math.Clamp(320 / Math.Max(1, n), 22, 64);
        var width = rowLabelWidth + cell * n + 10;
        var height = headerHeight + cell * n + 30;
        var svg = new StringBuilder();
        svg.Append($"<svg id=\"{Enc(id)}\" class=\"chart heatmap\" role=\"img\" aria-label=\"{Enc(title)}\" xmlns=\"http://www.w3.org/2000/svg\" ")
            .Append($"viewBox=\"0 0 {width} {height}\" width=\"{width}\" height=\"{height}\"><title>{Enc(title)}</title>")
            .Append($"<text class=\"title\" x=\"4\" y=\"16\">{Enc(title)}</text>")
            .Append($"<text class=\"axis-name\" x=\"{rowLabelWidth + cell * n / 2}\" y=\"30\" text-anchor=\"middle\">predicted</text>")
            .Append($"<text class=\"axis-name\" x=\"4\" y=\"{headerHeight - 4}\">true ↓</text>");
        for (var p = 0; p < n; p++)
        {
            var x = rowLabelWidth + cell * p + cell / 2;
            svg.Append($"<text class=\"tick\" transform=\"translate({x},{headerHeight - 6}) rotate(-40)\">{Enc(Short(labels[p]))}<title>{Enc(labels[p])}</title></text>");
        }
        for (var t = 0; t < n; t++)
        {
            var row = t < matrix.Count ? matrix[t] : [];
            var rowTotal = Math.Max(1, row.Sum());
            var y = headerHeight + cell * t;
            svg.Append($"<text class=\"tick\" x=\"{rowLabelWidth - 6}\" y=\"{y + cell / 2 + 4}\" text-anchor=\"end\">{Enc(Short(labels[t]))}<title>{Enc(labels[t])}</title></text>");
            for (var p = 0; p < n; p++)
            {
                var count = p < row.Count ? row[p] : 0;
                var share = count / (double)rowTotal;
                var x = rowLabelWidth + cell * p;
                svg.Append($"<rect class=\"cell\" data-true=\"{Enc(labels[t])}\" data-predicted=\"{Enc(labels[p])}\" data-value=\"{count}\" ")
                    .Append($"x=\"{x}\" y=\"{y}\" width=\"{cell}\" height=\"{cell}\" fill=\"{Shade(share)}\"")
                    .Append(t == p ? " stroke=\"#333\" stroke-width=\"2\"" : " stroke=\"#fff\"")
                    .Append($"><title>true {Enc(labels[t])}, predicted {Enc(labels[p])}: {count} ({share:P0})</title></rect>")
                    .Append($"<text class=\"count\" x=\"{x + cell / 2}\" y=\"{y + cell / 2 + 4}\" text-anchor=\"middle\" fill=\"{(share > 0.55 ? "#fff" : "#111")}\">{count}</text>");
            }
        }
        return svg.Append("</svg>").ToString();
    }

    /// <summary>White to blue by share in [0, 1].</summary>
    public static string Shade(double share)
    {
        share = double.IsFinite(share) ? Math.Clamp(share, 0, 1) : 0;
        int Mix(int from, int to) => (int)Math.Round(from + (to - from) * share);
        return $"#{Mix(0xff, 0x08):x2}{Mix(0xff, 0x45):x2}{Mix(0xff, 0x94):x2}";
    }

    private static StringBuilder Open(string id, string kind, string title, IReadOnlyList<string> seriesNames)
    {
        var svg = new StringBuilder();
        svg.Append($"<svg id=\"{Enc(id)}\" class=\"chart {kind}-chart\" role=\"img\" aria-label=\"{Enc(title)}\" xmlns=\"http://www.w3.org/2000/svg\" ")
            .Append($"viewBox=\"0 0 {Width} {Height}\" width=\"{Width}\" height=\"{Height}\"><title>{Enc(title)}</title>")
            .Append($"<text class=\"title\" x=\"4\" y=\"16\">{Enc(title)}</text>");
        // Legend on one row under the title; long names are shortened, the full one is in the tooltip.
        var x = (double)Left;
        for (var s = 0; s < seriesNames.Count; s++)
        {
            var name = Short(seriesNames[s]);
            svg.Append($"<g class=\"legend\"><rect x=\"{F(x)}\" y=\"21\" width=\"10\" height=\"10\" fill=\"{Palette[s % Palette.Count]}\"/>")
                .Append($"<text x=\"{F(x + 13)}\" y=\"30\">{Enc(name)}<title>{Enc(seriesNames[s])}</title></text></g>");
            x += 22 + name.Length * 6.2;
        }
        return svg;
    }

    private static string Close(StringBuilder svg) => svg.Append("</svg>").ToString();

    private static void YAxis(StringBuilder svg, double low, double high, string format)
    {
        svg.Append($"<line class=\"axis\" x1=\"{Left}\" y1=\"{Top}\" x2=\"{Left}\" y2=\"{Top + PlotHeight}\" stroke=\"#888\"/>");
        for (var k = 0; k <= 4; k++)
        {
            var v = low + (high - low) * k / 4;
            var y = Y(v, low, high);
            svg.Append($"<line class=\"grid\" x1=\"{Left}\" y1=\"{F(y)}\" x2=\"{Left + PlotWidth}\" y2=\"{F(y)}\" stroke=\"#e4e4e4\"/>")
                .Append($"<text class=\"tick\" x=\"{Left - 5}\" y=\"{F(y + 4)}\" text-anchor=\"end\">{Enc(Format(v, format))}</text>");
        }
    }

    private static void XAxis(StringBuilder svg, IReadOnlyList<string> categories, Func<int, double> x)
    {
        svg.Append($"<line class=\"axis\" x1=\"{Left}\" y1=\"{Top + PlotHeight}\" x2=\"{Left + PlotWidth}\" y2=\"{Top + PlotHeight}\" stroke=\"#888\"/>");
        for (var i = 0; i < categories.Count; i++)
            svg.Append($"<text class=\"tick\" x=\"{F(x(i))}\" y=\"{Top + PlotHeight + 16}\" text-anchor=\"middle\">{Enc(categories[i])}</text>");
    }

    /// <summary>
    /// The top of a zero-based axis: four equal steps of a round size (1, 1.25, 1.5, 2, 2.5, ... 8 × 10^k) covering <paramref name="max"/>, so the
    /// five tick labels are round numbers (whole ones for counts).
    /// </summary>
    public static double NiceMax(double max, bool integers)
    {
        if (!double.IsFinite(max) || max <= 0) return integers ? 4 : 1;
        var raw = max / 4;
        var magnitude = Math.Pow(10, Math.Floor(Math.Log10(raw)));
        var step = new[] { 1, 1.25, 1.5, 2, 2.5, 3, 4, 5, 6, 7.5, 8, 10 }.Select(m => m * magnitude).First(candidate => candidate >= raw * (1 - 1e-9));
        if (integers) step = Math.Max(1, Math.Ceiling(step));
        return step * 4;
    }

    /// <summary>The y range: fixed ends where given, else the data's, padded so a flat line sits mid-plot.</summary>
    internal static (double Low, double High) Range(IReadOnlyList<double> values, double? min, double? max)
    {
        var low = min ?? (values.Count == 0 ? 0 : values.Min());
        var high = max ?? (values.Count == 0 ? 1 : values.Max());
        if (high - low < 1e-12)
        {
            var pad = Math.Abs(high) > 1e-12 ? Math.Abs(high) * 0.1 : 1;
            if (min is null) low -= pad;
            if (max is null) high += pad;
            if (high - low < 1e-12) high = low + 1;
        }
        else if (max is null)
            high += (high - low) * 0.05;
        return (low, high);
    }

    private static double Y(double v, double low, double high) => Top + PlotHeight * (1 - (Math.Clamp(v, low, high) - low) / (high - low));

    private static string Short(string s) => s.Length <= 16 ? s : s[..15] + "…";
    private static string Format(double v, string format) => v.ToString(format, CultureInfo.InvariantCulture);
    private static string F(double v, string format = "0.##") => v.ToString(format, CultureInfo.InvariantCulture);
    private static string Enc(string s) => WebUtility.HtmlEncode(s);
}
