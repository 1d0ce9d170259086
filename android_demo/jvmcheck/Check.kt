// The app's pure-Kotlin core (app/src/main/java/dev/lrganedge/demo/core), driven on a desktop JVM by
// the Python test suite (tests/test_android.py), which compiles it with a Kotlin compiler from PyPI.
// Not part of the app.

import dev.lrganedge.demo.core.ArtifactTiming
import dev.lrganedge.demo.core.BenchReport
import dev.lrganedge.demo.core.DeviceInfo
import dev.lrganedge.demo.core.ManifestException
import dev.lrganedge.demo.core.ManifestReader
import dev.lrganedge.demo.core.MetaBank
import dev.lrganedge.demo.core.Pixels
import kotlinx.serialization.json.JsonArray
import kotlinx.serialization.json.JsonObject
import kotlinx.serialization.json.JsonPrimitive
import java.io.File
import java.nio.ByteBuffer
import java.nio.ByteOrder
import kotlin.system.exitProcess

fun main(args: Array<String>) {
    try {
        when (args[0]) {
            "pixels" -> pixels(File(args[1]), File(args[2]), args[3].toInt(), args[4].toInt(), args[5].toInt(),
                               args[6].toFloat(), args[7].toFloat())
            "manifest" -> println(describe(File(args[1])))
            "bench" -> bench(File(args[1]), File(args[2]), args.drop(3).map { it.toDouble() })
            else -> throw IllegalArgumentException("unknown command ${args[0]}")
        }
    } catch (e: ManifestException) {
        System.err.println("ManifestException: ${e.message}")
        exitProcess(3)
    }
}

/** n images of 3 x h x w little-endian floats in, ARGB ints (little-endian) out. */
fun pixels(input: File, output: File, n: Int, h: Int, w: Int, low: Float, high: Float) {
    val floats = FloatArray(n * 3 * h * w)
    ByteBuffer.wrap(input.readBytes()).order(ByteOrder.LITTLE_ENDIAN).asFloatBuffer().get(floats)
    val out = ByteBuffer.allocate(n * h * w * 4).order(ByteOrder.LITTLE_ENDIAN)
    for (i in 0 until n) Pixels.toArgb(floats, i, h, w, low, high).forEach { out.putInt(it) }
    output.writeBytes(out.array())
}

/** What the app reads from an export directory's manifest.json and meta_bank.bin, as JSON. */
fun describe(manifestFile: File): JsonObject {
    val reader = ManifestReader()
    val m = reader.parse(manifestFile.readText())
    val bank = MetaBank.read(File(manifestFile.parentFile, m.metaBank.file).readBytes(), m.metaBank)
    fun str(s: String?) = JsonPrimitive(s)
    fun num(n: Number) = JsonPrimitive(n)
    fun longs(xs: List<Long>) = JsonArray(xs.map { JsonPrimitive(it) })
    return JsonObject(mapOf(
        "fields_read" to JsonArray(reader.fieldsRead.map { JsonPrimitive(it) }),
        "name" to str(m.name), "resolution" to num(m.resolution), "metadata_source" to str(m.metadataSource),
        "model" to JsonObject(mapOf("preset" to str(m.model.preset), "z_dim" to num(m.model.zDim),
            "meta_dim" to num(m.model.metaDim), "nop_g" to num(m.model.nopG), "nop_d" to num(m.model.nopD))),
        "meta_bank" to JsonObject(mapOf("rows" to num(bank.rows), "dim" to num(bank.dim),
            "row_sums" to JsonArray((0 until bank.rows).map { r -> JsonPrimitive(bank.row(r).sum()) }))),
        "programs" to JsonArray(m.programs.map { a ->
            JsonObject(mapOf(
                "file" to str(a.file), "dtype" to str(a.dtype), "backend" to str(a.backend), "batch" to num(a.batch),
                "inputs" to JsonArray(a.inputs.map { JsonObject(mapOf("name" to str(it.name), "shape" to longs(it.shape))) }),
                "output_shape" to longs(a.output.shape),
                "output_range" to JsonArray(listOf(num(a.output.rangeLow), num(a.output.rangeHigh))),
                "parity_passed" to JsonPrimitive(a.parityPassed)))
        }),
        "artifacts" to num(m.artifacts.size),
    ))
}

/** A phone-style bench report for every program of the manifest, with the given call times. */
fun bench(manifestFile: File, output: File, seconds: List<Double>) {
    val m = ManifestReader().parse(manifestFile.readText())
    val device = DeviceInfo("jvm-check (test)", "JVM ${System.getProperty("java.version")}", "test CPU", 8, 4,
                            mapOf("executorch" to "1.5.1", "app" to "test"))
    val timings = m.programs.map { a ->
        ArtifactTiming(a, File(manifestFile.parentFile, a.file).length(), seconds, 123.5, "test: fixed value")
    }
    output.writeText(BenchReport.build(m, device, timings, warmup = 2, createdIso = "2026-12-04T00:00:00Z",
                                       command = "jvmcheck bench", wallSeconds = seconds.sum()))
}
