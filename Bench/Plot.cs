namespace GpuNet.Bench;

/// <summary>PNG of the loss (left axis) and accuracy (right axis) curves of a run (ScottPlot).</summary>
internal static class Plot
{
    public static void Curves(string path, string title, IReadOnlyList<HistoryRow> history)
    {
        if (history.Count == 0) return;
        var plot = new ScottPlot.Plot();
        double[] x = history.Select(h => (double)h.Epoch).ToArray();
        plot.Add.Scatter(x, history.Select(h => h.TrainLoss).ToArray()).LegendText = "train loss";
        if (history.All(h => h.ValLoss is not null)) plot.Add.Scatter(x, history.Select(h => h.ValLoss!.Value).ToArray()).LegendText = "validation loss";
        if (history.All(h => h.TrainAccuracy is not null))
        {
            var s = plot.Add.Scatter(x, history.Select(h => h.TrainAccuracy!.Value).ToArray());
            s.LegendText = "train accuracy";
            s.Axes.YAxis = plot.Axes.Right;
        }
        if (history.All(h => h.ValAccuracy is not null))
        {
            var s = plot.Add.Scatter(x, history.Select(h => h.ValAccuracy!.Value).ToArray());
            s.LegendText = "validation accuracy";
            s.Axes.YAxis = plot.Axes.Right;
        }
        plot.Title(title);
        plot.XLabel("epoch");
        plot.YLabel("loss");
        plot.Axes.Right.Label.Text = "accuracy";
        plot.ShowLegend();
        string tmp = path + ".tmp.png";
        plot.SavePng(tmp, 900, 600);
        File.Move(tmp, path, overwrite: true);
    }
}
