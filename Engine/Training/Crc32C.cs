using System.Buffers.Binary;
using System.Numerics;

namespace GpuNet.Training;

/// <summary>
/// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78, initial value and final XOR 0xFFFFFFFF), the checksum of
/// TFRecord framing. <see cref="BitOperations.Crc32C(uint, ulong)"/> is the hardware instruction where the CPU has
/// one (SSE4.2, ARMv8 CRC32) and a table otherwise. Check value: "123456789" gives 0xE3069283.
/// </summary>
internal static class Crc32C
{
    /// <summary>CRC-32C of <paramref name="data"/>.</summary>
    public static uint Compute(ReadOnlySpan<byte> data)
    {
        uint crc = 0xFFFFFFFFu;
        while (data.Length >= 8)
        {
            crc = BitOperations.Crc32C(crc, BinaryPrimitives.ReadUInt64LittleEndian(data));
            data = data[8..];
        }
        foreach (byte b in data) crc = BitOperations.Crc32C(crc, b);
        return ~crc;
    }

    /// <summary>TFRecord's masked CRC: rotate right by 15 bits, then add 0xA282EAD8 (modulo 2^32).</summary>
    public static uint Masked(ReadOnlySpan<byte> data)
    {
        uint crc = Compute(data);
        return unchecked(((crc >> 15) | (crc << 17)) + 0xA282EAD8u);
    }
}
