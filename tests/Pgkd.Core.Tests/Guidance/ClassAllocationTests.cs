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

    [Fact]
    public void A_class_the_student_fails_at_cannot_take_a_many_class_round()
    {
        // Banking77-like: 400 samples over 77 classes, one class at F1 0 and the rest perfect: uncapped it gets 42, 8 even shares.
        var f1 = Enumerable.Repeat(1.0, 77).ToArray();
        f1[5] = 0;
        var unbounded = ClassAllocation.Allocate(400, f1, floorPerClass: 1);
        Assert.True(unbounded[5] >= 40, $"without a cap the failing class got {unbounded[5]}");

        Assert.Equal(new AllocationBounds(1, null), ClassAllocation.Bounds(400, 77, floorPerClass: 1, capPerClass: 0)); // no cap by default
        var bounds = ClassAllocation.Bounds(400, 77, floorPerClass: 1, capPerClass: 16); // about 3 even shares
        Assert.Equal(new AllocationBounds(1, 16), bounds);
        var capped = ClassAllocation.Allocate(400, f1, bounds.Floor, capPerClass: bounds.Cap);
        Assert.Equal(400, capped.Sum());
        Assert.Equal(16, capped[5]);
        Assert.All(capped, c => Assert.InRange(c, 1, 16));
        // The excess went to the others evenly (equal F1), not back to the capped class.
        Assert.True(capped.Where((_, i) => i != 5).Max() - capped.Where((_, i) => i != 5).Min() <= 1);
    }

    [Fact]
    public void Bounds_lower_a_floor_that_cannot_fit_and_keep_a_cap_that_holds_the_total()
    {
        Assert.Equal(new AllocationBounds(5, null), ClassAllocation.Bounds(400, 77, floorPerClass: 10, capPerClass: 0));
        Assert.Equal(new AllocationBounds(1, 6), ClassAllocation.Bounds(400, 77, floorPerClass: 1, capPerClass: 2)); // 2 x 77 < 400: raised to ceil(400 / 77)
        Assert.Equal(new AllocationBounds(25, 60), ClassAllocation.Bounds(200, 4, floorPerClass: 25, capPerClass: 60));
        Assert.Equal(new AllocationBounds(3, 3), ClassAllocation.Bounds(12, 4, floorPerClass: 3, capPerClass: 1)); // never below the floor
        var e = Assert.Throws<ArgumentException>(() => ClassAllocation.Allocate(10, [0.5, 0.5], 0, capPerClass: 4));
        Assert.Contains("cap of 4 per class cannot hold a total of 10 over 2 classes", e.Message);
        Assert.Throws<ArgumentException>(() => ClassAllocation.Allocate(10, [0.5, 0.5], 3, capPerClass: 2));
    }

    private static readonly Gen<(int Total, double[] F1, int Floor, int Cap)> BoundedRequests =
        Gen.Int[1, 80].SelectMany(k => Gen.Int[0, 3].SelectMany(floor =>
            Gen.Select(Gen.Int[k * floor, k * floor + 600], Gen.Double[0, 1].Array[k], Gen.Int[0, 40],
                (total, f1, cap) => (total, f1, floor, cap))));

    [Fact]
    public void Property_bounded_allocations_sum_exactly_stay_in_bounds_and_favour_weaker_classes()
    {
        BoundedRequests.Sample((total, f1, floorPerClass, capPerClass) =>
        {
            var bounds = ClassAllocation.Bounds(total, f1.Length, floorPerClass, capPerClass);
            var counts = ClassAllocation.Allocate(total, f1, bounds.Floor, capPerClass: bounds.Cap);
            Assert.Equal(total, counts.Sum());
            Assert.All(counts, c => Assert.InRange(c, bounds.Floor, bounds.Cap ?? total));
            AssertWeakerNeverGetFewer(f1, counts);
        }, iter: 500);
    }

    [Fact]
    public void A_cap_that_does_not_bind_changes_nothing()
    {
        Requests.Sample((total, f1, floor) =>
            Assert.Equal(ClassAllocation.Allocate(total, f1, floor), ClassAllocation.Allocate(total, f1, floor, capPerClass: total)), iter: 300);
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
            AssertWeakerNeverGetFewer(f1, ClassAllocation.Allocate(total, f1, floor));
        }, iter: 500);
    }

    private static void AssertWeakerNeverGetFewer(double[] f1, int[] counts)
    {
        for (var i = 0; i < f1.Length; i++)
            for (var j = 0; j < f1.Length; j++)
                if (f1[i] < f1[j]) Assert.True(counts[i] >= counts[j], $"F1 {f1[i]} got {counts[i]} < F1 {f1[j]} got {counts[j]}");
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
