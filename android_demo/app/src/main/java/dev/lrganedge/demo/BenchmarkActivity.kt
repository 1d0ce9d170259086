package dev.lrganedge.demo

import android.app.Activity
import android.os.Build
import android.os.Bundle
import android.os.Debug
import android.os.SystemClock
import android.util.Log
import android.widget.TextView
import dev.lrganedge.demo.core.ArtifactTiming
import dev.lrganedge.demo.core.BenchReport
import dev.lrganedge.demo.core.DeviceInfo
import java.io.File
import java.time.Instant
import java.time.temporal.ChronoUnit

/**
 * Warm-up plus N timed generations of every ExecuTorch program in the manifest, written as a
 * `lrgan-edge bench` JSON report (same schema) to files/bench/ in the app's external folder:
 *
 *     adb shell am start -W -n dev.lrganedge.demo/.BenchmarkActivity --ei runs 30 --ei warmup 3
 *     adb pull /sdcard/Android/data/dev.lrganedge.demo/files/bench/ .
 */
class BenchmarkActivity : Activity() {
    override fun onCreate(savedInstanceState: Bundle?) {
        super.onCreate(savedInstanceState)
        val text = TextView(this).apply { setPadding(32, 32, 32, 32); text = "benchmarking…" }
        setContentView(text)
        val runs = intent.getIntExtra("runs", 30).coerceAtLeast(1)
        val warmup = intent.getIntExtra("warmup", 3).coerceAtLeast(0)
        Thread {
            val message = try {
                "wrote ${benchmark(runs, warmup)}"
            } catch (e: Exception) {
                Log.e(TAG, "benchmark failed", e)
                "error: ${e.message}"
            }
            Log.i(TAG, message)
            runOnUiThread { text.text = message }
        }.start()
    }

    private fun benchmark(runs: Int, warmup: Int): File {
        val started = SystemClock.elapsedRealtimeNanos()
        val files = ModelFiles.locate(this)
        val manifest = files.manifest
        val timings = manifest.programs.map { program ->
            val generator = LrganGenerator(files, program)
            try {
                repeat(warmup) { generator.generate(it.toLong(), it % files.metaBank.rows, files.metaBank) }
                val seconds = (0 until runs).map { i ->
                    generator.generate(1000L + i, i % files.metaBank.rows, files.metaBank).latencyMs / 1e3
                }
                val memory = Debug.MemoryInfo().also { Debug.getMemoryInfo(it) }
                ArtifactTiming(program, files.file(program.file).length(), seconds,
                               peakMemoryMb = memory.totalPss / 1024.0,
                               memoryMethod = "Debug.getMemoryInfo total PSS after the timed runs")
            } finally {
                generator.close()
            }
        }
        val cores = Runtime.getRuntime().availableProcessors()
        val soc = if (Build.VERSION.SDK_INT >= 31) "${Build.SOC_MANUFACTURER} ${Build.SOC_MODEL}" else Build.HARDWARE
        val device = DeviceInfo(
            hostname = "${Build.MANUFACTURER} ${Build.MODEL} (${Build.DEVICE})",
            platform = "Android ${Build.VERSION.RELEASE} (API ${Build.VERSION.SDK_INT}), ${Build.SUPPORTED_ABIS.first()}",
            cpu = soc, logicalCpus = cores, threads = cores,
            versions = mapOf("executorch" to BuildConfig.EXECUTORCH_VERSION, "app" to BuildConfig.VERSION_NAME,
                             "lrgan_edge_export" to manifest.packageVersion),
        )
        val wall = (SystemClock.elapsedRealtimeNanos() - started) / 1e9
        val json = BenchReport.build(manifest, device, timings, warmup,
                                     createdIso = Instant.now().truncatedTo(ChronoUnit.SECONDS).toString(),
                                     command = "BenchmarkActivity runs=$runs warmup=$warmup", wallSeconds = wall)
        val dir = File(getExternalFilesDir(null), "bench").apply { mkdirs() }
        val out = File(dir, "bench_android_${Build.DEVICE}_${manifest.name}_${System.currentTimeMillis() / 1000}.json")
        out.writeText(json)
        return out
    }

    companion object {
        const val TAG = "LrganBench"
    }
}
