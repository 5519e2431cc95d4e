using GpuNet.Training;

namespace GpuNet.Tests;

/// <summary>Host-side metrics against hand-computed values (scikit-learn's definitions, zero_division = 0).</summary>
public sealed class MetricsTests
{
    // actual    0 0 0 1 1 2 2 2 2 0
    // predicted 0 1 0 1 0 1 0 0 1 0
    // confusion [actual, predicted]: [3 1 0; 1 1 0; 2 2 0]; class 2 is never predicted (precision 0/0 := 0)
    private static readonly int[] Actual = [0, 0, 0, 1, 1, 2, 2, 2, 2, 0];
    private static readonly int[] Predicted = [0, 1, 0, 1, 0, 1, 0, 0, 1, 0];

    [Fact]
    public void ConfusionMatrixPerClassAndMacroMatchHandComputedValues()
    {
        var m = ClassificationMetrics.Compute(Predicted, Actual, 3);
        long[,] expected = { { 3, 1, 0 }, { 1, 1, 0 }, { 2, 2, 0 } };
        Assert.Equal(expected, m.ConfusionMatrix);
        Assert.Equal(10, m.Samples);
        Assert.Equal(0.4, m.Accuracy, 15);
        // class 0: TP 3, FP 3, FN 1; class 1: TP 1, FP 3, FN 1; class 2: TP 0, FP 0, FN 4
        Assert.Equal([0.5, 0.25, 0.0], m.Precision);
        Assert.Equal([0.75, 0.5, 0.0], m.Recall);
        Assert.Equal(0.6, m.F1[0], 15);
        Assert.Equal(1.0 / 3, m.F1[1], 15);
        Assert.Equal(0.0, m.F1[2]);
        Assert.Equal([4L, 2L, 4L], m.Support);
        Assert.Equal(0.25, m.MacroPrecision, 15);
        Assert.Equal(1.25 / 3, m.MacroRecall, 15);
        Assert.Equal((0.6 + 1.0 / 3) / 3, m.MacroF1, 15);
        Assert.Null(m.RocAuc);
    }

    [Fact]
    public void AClassThatNeverOccursCountsAsZeroInTheMacroAverage()
    {
        var m = ClassificationMetrics.Compute(Predicted, Actual, 4);
        Assert.Equal(0.0, m.Precision[3]); Assert.Equal(0.0, m.Recall[3]); Assert.Equal(0.0, m.F1[3]);
        Assert.Equal((0.6 + 1.0 / 3) / 4, m.MacroF1, 15);
        Assert.Equal(0.4, m.Accuracy, 15);
    }

    [Fact]
    public void RocAucMatchesScikitLearnIncludingTies()
    {
        // scikit-learn's documentation example: roc_auc_score([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) = 0.75
        Assert.Equal(0.75, ClassificationMetrics.BinaryRocAuc([0, 0, 1, 1], [0.1f, 0.4f, 0.35f, 0.8f]), 15);
        // ties: positives {0.35, 0.4, 0.8}, negatives {0.1, 0.4, 0.4}; pairs won 1 + (1 + 0.5 + 0.5) + 3 = 6 of 9
        // (average ranks: 0.35 -> 2, the three 0.4 -> 4, 0.8 -> 6; (12 - 6) / 9); scikit-learn gives 0.666...
        Assert.Equal(6.0 / 9, ClassificationMetrics.BinaryRocAuc([0, 0, 1, 1, 0, 1], [0.1f, 0.4f, 0.35f, 0.8f, 0.4f, 0.4f]), 15);
        // all scores tied: 0.5
        Assert.Equal(0.5, ClassificationMetrics.BinaryRocAuc([0, 1, 0, 1], [2f, 2f, 2f, 2f]), 15);
        var m = ClassificationMetrics.Compute([0, 0, 0, 1, 1, 1], [0, 0, 1, 1, 0, 1], 2, [0.1f, 0.4f, 0.35f, 0.8f, 0.4f, 0.4f]);
        Assert.Equal(6.0 / 9, m.RocAuc!.Value, 15);
    }

    [Fact]
    public void InvalidInputsAreRejectedWithClearMessages()
    {
        var e = Assert.Throws<ArgumentException>(() => ClassificationMetrics.Compute([0, 3], [0, 1], 3));
        Assert.Contains("predicted[1] = 3 is outside [0, 3)", e.Message);
        e = Assert.Throws<ArgumentException>(() => ClassificationMetrics.BinaryRocAuc([1, 1], [0.2f, 0.3f]));
        Assert.Contains("needs both classes", e.Message);
        Assert.Throws<ArgumentException>(() => ClassificationMetrics.Compute([0], [0, 1], 2));
        // one class absent: AUC undefined, reported as null rather than thrown
        Assert.Null(ClassificationMetrics.Compute([0, 1], [1, 1], 2, [0.3f, 0.7f]).RocAuc);
    }
}
