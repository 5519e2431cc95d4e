using GpuNet.Bench;

// dotnet run --project Bench -c Release -- <devices|peak|gemm|kernels|optim|train|data> [options]; every command has --help.
// Exit status: 0 success, 1 a benchmark failed (wrong result, runtime error), 2 bad arguments.
return BenchApp.Run(args);
