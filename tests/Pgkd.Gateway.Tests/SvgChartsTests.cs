using System.Globalization;
using System.Xml.Linq;
using Pgkd.Gateway.Reports;

namespace Pgkd.Gateway.Tests;

public sealed class SvgChartsTests
{
    private static readonly XNamespace Svg = "http://www.w3.org/2000/svg";

    private static XElement Parse(string svg) => XElement.Parse(svg); // also proves the markup is well-formed XML

    private static double Attr(XElement e, string name) => double.Parse(e.Attribute(name)!.Value, CultureInfo.InvariantCulture);

    [Fact]
    public void Line_chart_draws_a_point_per_value_and_skips_gaps()
    {
        var svg = Parse(SvgCharts.Line("c", "Accuracy", ["r0", "r1", "r2"],
            [new("accuracy", [0.5, 0.7, 0.9]), new("macro-F1", [0.4, null, 0.8])], yMin: 0, yMax: 1));

        var points = svg.Descendants(Svg + "circle").Where(c => c.Attribute("class")?.Value == "point").ToList();
        Assert.Equal(5, points.Count);
        Assert.Equal(["0.5", "0.7", "0.9"], points.Where(p => p.Attribute("data-series")!.Value == "accuracy").Select(p => p.Attribute("data-value")!.Value));
        Assert.Equal(2, svg.Descendants(Svg + "polyline").Count());
        // Higher value, higher on screen (smaller y); the fixed range puts 1.0 at the top of the plot.
        var accuracy = points.Take(3).Select(p => Attr(p, "cy")).ToList();
        Assert.True(accuracy[0] > accuracy[1] && accuracy[1] > accuracy[2], string.Join(",", accuracy));
        Assert.InRange(Attr(points[2], "cx") - Attr(points[0], "cx"), 300, SvgCharts.Width);
    }

    [Fact]
    public void Line_chart_with_a_single_round_or_a_flat_series_still_has_a_drawable_range()
    {
        var svg = Parse(SvgCharts.Line("c", "Loss", ["r0"], [new("loss", [0.25])]));
        var point = Assert.Single(svg.Descendants(Svg + "circle"));
        Assert.InRange(Attr(point, "cy"), 1, SvgCharts.Height - 1);
        Assert.Empty(svg.Descendants(Svg + "polyline"));
        Assert.False(double.IsNaN(Attr(point, "cy")));
    }

    [Fact]
    public void Bar_chart_has_one_bar_per_round_and_series_with_heights_in_proportion()
    {
        var svg = Parse(SvgCharts.Bars("b", "Accepted", ["r1", "r2"], [new("World", [4, 2]), new("Sports", [0, 8])]));
        var bars = svg.Descendants(Svg + "rect").Where(r => r.Attribute("class")?.Value == "bar").ToList();
        Assert.Equal(4, bars.Count);
        double Height(string series, string round) => Attr(bars.Single(b => b.Attribute("data-series")!.Value == series && b.Attribute("data-category")!.Value == round), "height");
        Assert.Equal(0, Height("Sports", "r1"));
        Assert.Equal(Height("World", "r1") * 2, Height("Sports", "r2"), 1);
        Assert.Equal(Height("World", "r2") * 2, Height("World", "r1"), 1);
    }

    [Fact]
    public void Bar_chart_of_zeros_does_not_divide_by_zero()
    {
        var svg = Parse(SvgCharts.Bars("b", "Rejected", ["r1"], [new("rejected", [0])]));
        var bar = Assert.Single(svg.Descendants(Svg + "rect"), r => r.Attribute("class")?.Value == "bar");
        Assert.Equal(0, Attr(bar, "height"));
    }

    [Fact]
    public void Heatmap_has_a_cell_per_pair_shaded_by_row_share()
    {
        var svg = Parse(SvgCharts.Heatmap("h", "Confusion", ["a", "b", "c"], [[9, 1, 0], [0, 2, 2], [0, 0, 0]]));
        var cells = svg.Descendants(Svg + "rect").Where(r => r.Attribute("class")?.Value == "cell").ToList();
        Assert.Equal(9, cells.Count);
        var ab = cells.Single(c => c.Attribute("data-true")!.Value == "a" && c.Attribute("data-predicted")!.Value == "b");
        Assert.Equal("1", ab.Attribute("data-value")!.Value);
        Assert.Equal(SvgCharts.Shade(0.9), cells[0].Attribute("fill")!.Value);
        Assert.Equal(SvgCharts.Shade(0), cells[8].Attribute("fill")!.Value); // an empty row is white, not NaN
        Assert.Equal("#ffffff", SvgCharts.Shade(0));
        Assert.Equal("#084594", SvgCharts.Shade(1));
    }

    [Theory]
    [InlineData(1, true, 4)]     // counts: whole-number ticks 0..4, never 0, 0.25, ...
    [InlineData(5, true, 8)]
    [InlineData(16, true, 16)]
    [InlineData(4411, true, 5000)]
    [InlineData(0.0015, false, 0.0016)]
    [InlineData(0, true, 4)]
    public void Bar_axes_end_on_round_numbers(double max, bool integers, double expected) =>
        Assert.Equal(expected, SvgCharts.NiceMax(max, integers), 9);

    [Fact]
    public void Labels_are_escaped()
    {
        var label = "<script>alert(1)</script> & \"x\"";
        var markup = SvgCharts.Bars("b", "t", ["r1"], [new(label, [1])]) + SvgCharts.Heatmap("h", "t", [label, "b"], [[1, 0], [0, 1]]);
        Assert.DoesNotContain("<script>", markup);
        Parse(SvgCharts.Bars("b", "t", ["r1"], [new(label, [1])]));
    }
}
