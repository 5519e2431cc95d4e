namespace GpuNet.Training;

/// <summary>
/// Classification metrics computed on the host from labels gathered once per evaluation, with scikit-learn's
/// definitions: the confusion matrix counts [actual, predicted]; per class, precision = TP / (TP + FP),
/// recall = TP / (TP + FN), F1 = 2 TP / (2 TP + FP + FN); a zero denominator gives 0 (scikit-learn's
/// <c>zero_division=0</c>). Macro averages are unweighted means over every class 0..C-1 (scikit-learn with
/// <c>labels=range(C)</c>), so a class that never occurs and is never predicted counts as 0.
/// </summary>
public sealed class ClassificationMetrics
{
    private ClassificationMetrics(int classes, long[,] confusion, double? rocAuc)
    {
        Classes = classes;
        ConfusionMatrix = confusion;
        var p = new double[classes]; var r = new double[classes]; var f = new double[classes]; var s = new long[classes];
        long correct = 0, total = 0;
        for (int c = 0; c < classes; c++)
        {
            long tp = confusion[c, c], fp = 0, fn = 0;
            for (int k = 0; k < classes; k++)
            {
                if (k == c) continue;
                fp += confusion[k, c];
                fn += confusion[c, k];
            }
            p[c] = Ratio(tp, tp + fp);
            r[c] = Ratio(tp, tp + fn);
            f[c] = Ratio(2 * tp, 2 * tp + fp + fn);
            s[c] = tp + fn;
            correct += tp;
            total += tp + fn;
        }
        Precision = p; Recall = r; F1 = f; Support = s;
        Samples = total;
        Accuracy = Ratio(correct, total);
        MacroPrecision = p.Average(); MacroRecall = r.Average(); MacroF1 = f.Average();
        RocAuc = rocAuc;
    }

    /// <summary>Number of classes C.</summary>
    public int Classes { get; }
    /// <summary>Number of samples.</summary>
    public long Samples { get; }
    /// <summary>Counts indexed [actual class, predicted class].</summary>
    public long[,] ConfusionMatrix { get; }
    /// <summary>Fraction of samples whose prediction equals the label.</summary>
    public double Accuracy { get; }
    /// <summary>Per-class precision (0 when the class is never predicted).</summary>
    public IReadOnlyList<double> Precision { get; }
    /// <summary>Per-class recall (0 when the class never occurs).</summary>
    public IReadOnlyList<double> Recall { get; }
    /// <summary>Per-class F1 (0 when the class neither occurs nor is predicted).</summary>
    public IReadOnlyList<double> F1 { get; }
    /// <summary>Per-class number of samples of that actual class.</summary>
    public IReadOnlyList<long> Support { get; }
    /// <summary>Unweighted mean of <see cref="Precision"/>.</summary>
    public double MacroPrecision { get; }
    /// <summary>Unweighted mean of <see cref="Recall"/>.</summary>
    public double MacroRecall { get; }
    /// <summary>Unweighted mean of <see cref="F1"/>.</summary>
    public double MacroF1 { get; }
    /// <summary>ROC AUC of a binary task given scores; null for more than two classes, without scores, or when one class is absent.</summary>
    public double? RocAuc { get; }

    /// <summary>Metrics of <paramref name="predicted"/> against <paramref name="actual"/> labels in [0, <paramref name="classes"/>).</summary>
    /// <param name="predicted">Predicted class per sample.</param>
    /// <param name="actual">True class per sample.</param>
    /// <param name="classes">Number of classes, &gt;= 2.</param>
    /// <param name="scores">For a binary task, a score per sample that grows with the odds of class 1 (a logit): enables <see cref="RocAuc"/>.</param>
    /// <exception cref="ArgumentException">Lengths differ, a label is out of range, or scores are given for more than two classes.</exception>
    public static ClassificationMetrics Compute(ReadOnlySpan<int> predicted, ReadOnlySpan<int> actual, int classes, ReadOnlySpan<float> scores = default)
    {
        if (classes < 2) throw new ArgumentOutOfRangeException(nameof(classes), classes, "classification metrics need at least 2 classes");
        if (predicted.Length != actual.Length)
            throw new ArgumentException($"predicted has {predicted.Length} labels, actual has {actual.Length}", nameof(predicted));
        if (scores.Length != 0 && (classes != 2 || scores.Length != actual.Length))
            throw new ArgumentException($"scores are for binary tasks, one per sample: got {scores.Length} scores for {actual.Length} samples and {classes} classes", nameof(scores));
        var confusion = new long[classes, classes];
        for (int i = 0; i < actual.Length; i++)
        {
            int a = actual[i], p = predicted[i];
            if ((uint)a >= (uint)classes) throw new ArgumentException($"actual[{i}] = {a} is outside [0, {classes})", nameof(actual));
            if ((uint)p >= (uint)classes) throw new ArgumentException($"predicted[{i}] = {p} is outside [0, {classes})", nameof(predicted));
            confusion[a, p]++;
        }
        double? auc = null;
        if (scores.Length != 0 && confusion[0, 0] + confusion[0, 1] > 0 && confusion[1, 0] + confusion[1, 1] > 0)
            auc = BinaryRocAuc(actual, scores);
        return new ClassificationMetrics(classes, confusion, auc);
    }

    /// <summary>
    /// Area under the ROC curve of binary labels (0 or 1) ranked by <paramref name="scores"/>: the Mann-Whitney
    /// statistic (sum of the positives' ranks - P (P + 1) / 2) / (P N), with tied scores given their average rank,
    /// which equals scikit-learn's <c>roc_auc_score</c> (ties count one half).
    /// </summary>
    /// <exception cref="ArgumentException">Lengths differ, a label is not 0 or 1, a score is NaN, or only one class occurs.</exception>
    public static double BinaryRocAuc(ReadOnlySpan<int> actual, ReadOnlySpan<float> scores)
    {
        if (actual.Length != scores.Length)
            throw new ArgumentException($"{actual.Length} labels but {scores.Length} scores", nameof(scores));
        int n = actual.Length;
        var idx = new int[n];
        var s = scores.ToArray();
        for (int i = 0; i < n; i++)
        {
            if (actual[i] is not (0 or 1)) throw new ArgumentException($"actual[{i}] = {actual[i]}: binary labels must be 0 or 1", nameof(actual));
            if (float.IsNaN(s[i])) throw new ArgumentException($"scores[{i}] is NaN", nameof(scores));
            idx[i] = i;
        }
        Array.Sort(s.ToArray(), idx);
        double rankSumPositive = 0;
        long positives = 0;
        for (int i = 0; i < n;)
        {
            int j = i;
            while (j + 1 < n && s[idx[j + 1]] == s[idx[i]]) j++;
            double averageRank = (i + j) / 2.0 + 1;   // ranks are 1-based
            for (int k = i; k <= j; k++)
                if (actual[idx[k]] == 1) { rankSumPositive += averageRank; positives++; }
            i = j + 1;
        }
        long negatives = n - positives;
        if (positives == 0 || negatives == 0)
            throw new ArgumentException($"ROC AUC needs both classes; got {positives} positives and {negatives} negatives", nameof(actual));
        return (rankSumPositive - positives * (positives + 1) / 2.0) / ((double)positives * negatives);
    }

    private static double Ratio(long num, long den) => den == 0 ? 0 : (double)num / den;
}
