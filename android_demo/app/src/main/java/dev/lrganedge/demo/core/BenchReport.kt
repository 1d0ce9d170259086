package dev.lrganedge.demo.core

import kotlinx.serialization.json.JsonArray
import kotlinx.serialization.json.JsonElement
import kotlinx.serialization.json.JsonNull
import kotlinx.serialization.json.JsonObject
import kotlinx.serialization.json.JsonPrimitive
import kotlin.math.ceil

/** Where the phone numbers were measured (filled from android.os.Build on the device). */
data class DeviceInfo(
    val hostname: String,          // e.g. "Pixel 8 (husky)"
    val platform: String,          // e.g. "Android 15 (API 35)"
    val cpu: String,               // SoC name
    val logicalCpus: Int,
    val threads: Int,              // XNNPACK threads (0 in Module.load = the runtime's default, reported as cores)
    val versions: Map<String, String>,
)

/** One artifact's timings: every generation of one batch, in seconds, after the warm-up. */
data class ArtifactTiming(
    val artifact: Artifact,
    val fileBytes: Long,
    val callSeconds: List<Double>,
    val peakMemoryMb: Double,
    val memoryMethod: String,
)

/**
 * A benchmark report in the schema `lrgan-edge bench` writes (benchmarks/schema.json), so a
 * phone's rows merge into the desktop tables (`lrgan-edge bench --merge`). Runtime names are
 * `android-xnnpack-<dtype>`; the .pte's batch size is static, so the batch and the batch-1
 * measurements coincide when it is 1.
 */
object BenchReport {
    const val SCHEMA_VERSION = 1

    /** The same nearest-rank percentile as benchmarks/worker.py. */
    fun percentile(values: List<Double>, q: Double): Double {
        require(values.isNotEmpty()) { "no values" }
        val ordered = values.sorted()
        val rank = ceil(q / 100.0 * ordered.size).toInt() - 1
        return ordered[rank.coerceIn(0, ordered.size - 1)]
    }

    fun runtimeName(artifact: Artifact): String = "android-xnnpack-" + precision(artifact)

    private fun precision(artifact: Artifact): String = when (artifact.dtype) {
        "int8" -> "int8"
        "float16" -> "fp16"
        else -> "fp32"
    }

    fun build(manifest: Manifest, device: DeviceInfo, timings: List<ArtifactTiming>, warmup: Int,
              createdIso: String, command: String, wallSeconds: Double): String {
        require(timings.isNotEmpty() && timings.all { it.callSeconds.isNotEmpty() }) { "nothing was timed" }
        val runs = timings.first().callSeconds.size
        val batch = timings.first().artifact.batch
        val model = manifest.model
        val report = obj(
            "schema_version" to SCHEMA_VERSION,
            "created" to createdIso,
            "command" to command,
            "wall_s" to wallSeconds,
            "host" to obj(
                "hostname" to device.hostname, "platform" to device.platform, "cpu" to device.cpu,
                "logical_cpus" to device.logicalCpus, "threads" to device.threads, "gpu" to null,
                "versions" to JsonObject(device.versions.mapValues { JsonPrimitive(it.value) }),
            ),
            "settings" to obj(
                "batch_size" to batch, "images" to runs * batch, "repeats" to 1, "warmup" to warmup,
                "single_images" to if (batch == 1) runs else 0, "single_repeats" to 1, "threads" to device.threads,
            ),
            "matmul_peak_gflops_per_s" to obj(),            // not measured on the phone
            "models" to JsonArray(listOf(obj(
                "name" to "lrgan", "label" to "Ours", "kind" to "lrgan", "resolution" to manifest.resolution,
                "preset" to model.preset, "run_dir" to null, "nop_g" to model.nopG, "nop_d" to model.nopD,
                "gflops_per_image" to model.gflopsPerImage, "gflops_per_image_delegable" to model.gflopsPerImageDelegable,
            ))),
            "rows" to JsonArray(timings.map { row(it, manifest, device) }),
            "goals" to JsonArray(emptyList()),
        )
        return report.toString()
    }

    private fun row(t: ArtifactTiming, manifest: Manifest, device: DeviceInfo): JsonObject {
        val a = t.artifact
        val batch = a.batch
        val per100 = t.callSeconds.map { it / batch * 100.0 }
        val seconds = obj("median" to percentile(per100, 50.0), "min" to per100.min(), "max" to per100.max())
        val measured = obj("batch_size" to batch, "images" to t.callSeconds.size * batch, "repeats" to 1,
                           "seconds_per_100" to seconds)
        val single = if (batch != 1) null else obj(
            "batch_size" to 1, "images" to t.callSeconds.size, "repeats" to 1, "seconds_per_100" to seconds,
            "latency_ms" to obj(
                "p50" to percentile(t.callSeconds, 50.0) * 1e3, "p90" to percentile(t.callSeconds, 90.0) * 1e3,
                "min" to t.callSeconds.min() * 1e3, "max" to t.callSeconds.max() * 1e3,
            ),
        )
        val gflops = manifest.model.gflopsPerImageDelegable
        val medianPerImage = percentile(per100, 50.0) / 100.0
        return obj(
            "model" to "lrgan", "label" to "Ours", "runtime" to runtimeName(a), "device" to "cpu",
            "device_name" to device.cpu, "precision" to precision(a), "status" to "ok", "reason" to null,
            "runtime_version" to (device.versions["executorch"] ?: "unknown"), "threads" to device.threads,
            "artifact" to obj("file" to a.file, "bytes" to t.fileBytes, "parity" to obj("passed" to a.parityPassed)),
            "batch" to measured, "single" to single,
            "memory" to obj("method" to t.memoryMethod, "peak_mb" to t.peakMemoryMb),
            "gflops_per_image" to gflops, "achieved_gflops_per_s" to gflops / medianPerImage,
            "peak_gflops_per_s" to null, "fraction_of_peak" to null,
        )
    }

    private fun obj(vararg pairs: Pair<String, Any?>): JsonObject = JsonObject(pairs.associate { (k, v) -> k to json(v) })

    private fun json(v: Any?): JsonElement = when (v) {
        null -> JsonNull
        is JsonElement -> v
        is String -> JsonPrimitive(v)
        is Number -> JsonPrimitive(v)
        is Boolean -> JsonPrimitive(v)
        else -> throw IllegalArgumentException("cannot write ${v::class} to JSON")
    }
}
