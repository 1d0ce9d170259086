package dev.lrganedge.demo.core

import org.junit.Assert.assertArrayEquals
import org.junit.Assert.assertEquals
import org.junit.Assert.assertThrows
import org.junit.Assert.assertTrue
import org.junit.Test

/** `./gradlew test`: the app's pure logic on the JVM (the Python suite also drives it, see tests/test_android.py). */
class CoreTest {
    @Test
    fun pixelsMapTheOutputRangeToBytes() {
        // one 1x2 image: R = [-1, 1], G = [0, NaN], B = [2, -3]
        val data = floatArrayOf(-1f, 1f, 0f, Float.NaN, 2f, -3f)
        val argb = Pixels.toArgb(data, 0, 1, 2)
        assertEquals(0xFF0080FF.toInt(), argb[0])          // 0 -> 127.5 -> 128 (ties up); 2 clamps to 255
        assertEquals(0xFFFF0000.toInt(), argb[1])          // NaN -> 0, -3 clamps to 0
    }

    @Test
    fun manifestNeedsItsFields() {
        val error = assertThrows(ManifestException::class.java) { ManifestReader().parse("""{"schema_version": 1}""") }
        assertTrue(error.message!!.contains("lacks name"))
        val version = assertThrows(ManifestException::class.java) { ManifestReader().parse("""{"schema_version": 2}""") }
        assertTrue(version.message!!.contains("schema_version 2"))
    }

    @Test
    fun metaBankReadsLittleEndianRows() {
        val bytes = java.nio.ByteBuffer.allocate(16).order(java.nio.ByteOrder.LITTLE_ENDIAN)
            .putFloat(1f).putFloat(2f).putFloat(3f).putFloat(4f).array()
        val bank = MetaBank.read(bytes, MetaBankSpec("meta_bank.bin", 2, 2, "float32", "little", "row-major"))
        assertArrayEquals(floatArrayOf(3f, 4f), bank.row(1), 0f)
    }

    @Test
    fun percentileIsNearestRank() {
        assertEquals(2.0, BenchReport.percentile(listOf(4.0, 1.0, 2.0, 3.0), 50.0), 0.0)
        assertEquals(4.0, BenchReport.percentile(listOf(4.0, 1.0, 2.0, 3.0), 90.0), 0.0)
    }
}
