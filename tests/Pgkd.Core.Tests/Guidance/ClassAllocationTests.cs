using CsCheck;
using Pgkd.Core.Guidance;

namespace Pgkd.Core.Tests.Guidance;

public class ClassAllocationTests
{
    [Fact]
    public void Hand_worked_largest_remainder()
    {
        // Floor 1 each, 7 left; weights (1 - F1) + 0.1 = .2, .6, 1.0; shares .778, 2.333, 3.889;
        // floors 0, 2, 3 leave 2: largest remainders go to class 2 (.889) then class 0 (.778).
        Assert.Equal([2, 3, 5], ClassAllocation.Allocate(10, [0.9, 0.5, 0.1], floorPerClass: 1, smoothing: 0.1));
    }

    [Fact]
    public void Easy_class_is_not_starved_in_the_calibration_case()
    {
        // AG News-like F1s; allocation by (1 - F1) alone gave Sports only 9-22 of 200.
        var counts = ClassAllocation.Allocate(200, [0.85, 0.97, 0.80, 0.82], floorPerClass: 10);
        Assert.Equal(200, counts.Sum());
        Assert.InRange(counts[1], 30, 35);
        Assert.Equal(counts[1], counts.Min());
        Assert.Equal(counts[2], counts.Max());
    }

    [Fact]
    public void Equal_f1_gives_equal_shares_even_when_all_are_perfect() =>
        Assert.Equal([4, 3, 3], ClassAllocation.Allocate(10, [1.0, 1.0, 1.0], 0));

    [Fact]
    public void Floor_that_cannot_fit_is_a_clear_error()
    {
        var e = Assert.Throws<ArgumentException>(() => ClassAllocation.Allocate(10, [0.5, 0.5, 0.5, 0.5], 3));
        Assert.Contains("cannot give the floor of 3 to each of 4 classes (needs 12)", e.Message);
    }

    [Fact]
    public void Rejects_bad_inputs()
    {
        Assert.Throws<ArgumentException>(() => ClassAllocation.Allocate(10, [], 0));
        Assert.Throws<ArgumentException>(() => ClassAllocation.Allocate(10, [double.NaN], 0));
        Assert.Throws<ArgumentException>(() => ClassAllocation.Allocate(10, [1.5], 0));
        Assert.Throws<ArgumentOutOfRangeException>(() => ClassAllocation.Allocate(-1, [0.5], 0));
        Assert.Throws<ArgumentOutOfRangeException>(() => ClassAllocation.Allocate(10, [0.5], 0, smoothing: 0));
    }

    [Fact]
    public void Balanced_splits_evenly_with_the_remainder_first()
    {
        Assert.Equal([4, 3, 3], ClassAllocation.Balanced(10, 3));
        Assert.Equal([4, 4, 4, 4], ClassAllocation.Balanced(16, 4));
        Assert.Equal([0, 0], ClassAllocation.Balanced(0, 2));
    }

    private static readonly Gen<(int Total, double[] F1, int Floor)> Requests =
        Gen.Int[1, 8].SelectMany(k => Gen.Int[0, 10].SelectMany(floor =>
            Gen.Select(Gen.Int[k * floor, k * floor + 500], Gen.Double[0, 1].Array[k], (total, f1) => (total, f1, floor))));

    [Fact]
    public void Property_sums_exactly_and_honours_the_floor()
    {
        Requests.Sample((total, f1, floor) =>
        {
            var counts = ClassAllocation.Allocate(total, f1, floor);
            Assert.Equal(total, counts.Sum());
            Assert.All(counts, c => Assert.True(c >= floor));
        }, iter: 500);
    }

    [Fact]
    public void Property_weaker_classes_never_get_fewer()
    {
        Requests.Sample((total, f1, floor) =>
        {
            var counts = ClassAllocation.Allocate(total, f1, floor);
            for (var i = 0; i < f1.Length; i++)
                for (var j = 0; j < f1.Length; j++)
                    if (f1[i] < f1[j]) Assert.True(counts[i] >= counts[j], $"F1 {f1[i]} got {counts[i]} < F1 {f1[j]} got {counts[j]}");
        }, iter: 500);
    }

    [Fact]
    public void Property_balanced_sums_and_differs_by_at_most_one()
    {
        Gen.Select(Gen.Int[0, 1000], Gen.Int[1, 20]).Sample((total, k) =>
        {
            var counts = ClassAllocation.Balanced(total, k);
            Assert.Equal(total, counts.Sum());
            Assert.True(counts.Max() - counts.Min() <= 1);
        });
    }
}
