namespace GpuNet;

/// <summary>Element type of a tensor. Both are 4 bytes, so every buffer stores 4-byte elements.</summary>
public enum DType
{
    /// <summary>IEEE 754 binary32.</summary>
    Float32,
    /// <summary>Signed 32-bit integer (class labels, argmax indices).</summary>
    Int32,
}
