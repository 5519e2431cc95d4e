using GpuNet;

foreach (var d in Device.Available()) Console.WriteLine(d);
