package dev.lrganedge.demo

import android.os.SystemClock
import dev.lrganedge.demo.core.Artifact
import dev.lrganedge.demo.core.ManifestException
import dev.lrganedge.demo.core.MetaBank
import dev.lrganedge.demo.core.Noise
import dev.lrganedge.demo.core.Pixels
import org.pytorch.executorch.EValue
import org.pytorch.executorch.Module
import org.pytorch.executorch.Tensor
import java.io.Closeable

/** One generated image: ARGB pixels of the first image of the batch, and how long the call took. */
class Generated(val pixels: IntArray, val width: Int, val height: Int, val seed: Long, val metaRow: Int, val latencyMs: Double)

/**
 * One ExecuTorch program of the export. Inputs are fed by the names the manifest gives (the
 * exporter's contract: `z` noise and `meta` metadata), with the manifest's shapes; the output is
 * checked against the manifest's shape. Not thread-safe: call from one background thread, and
 * [close] it (in a `finally`) to free the native program.
 */
class LrganGenerator(files: ModelFiles, val artifact: Artifact) : Closeable {
    private val module: Module = Module.load(files.file(artifact.file).absolutePath, Module.LOAD_MODE_MMAP)
    private val noiseInput = artifact.inputs.firstOrNull { it.name == "z" }
        ?: throw ManifestException("${artifact.file}: the manifest names no input `z`")
    private val metaInput = artifact.inputs.firstOrNull { it.name == "meta" }
        ?: throw ManifestException("${artifact.file}: the manifest names no input `meta`")
    val batch = artifact.batch
    val height = artifact.output.shape[2].toInt()
    val width = artifact.output.shape[3].toInt()

    /** Raw call: the output tensor's values, NCHW. */
    fun run(noise: FloatArray, meta: FloatArray): FloatArray {
        val byName = mapOf(noiseInput.name to noise, metaInput.name to meta)
        val inputs = artifact.inputs.map { spec ->
            val data = byName.getValue(spec.name)
            require(data.size.toLong() == spec.numel) { "input ${spec.name}: ${data.size} values for shape ${spec.shape}" }
            EValue.from(Tensor.fromBlob(data, spec.shape.toLongArray()))
        }
        val output = module.forward(*inputs.toTypedArray())[0].toTensor()
        val shape = output.shape().toList()
        if (shape != artifact.output.shape) {
            throw ManifestException("${artifact.file} returned shape $shape; the manifest says ${artifact.output.shape}")
        }
        return output.dataAsFloatArray
    }

    /** A batch from [seed] and metadata row [metaRow] (every image of the batch shares the row). */
    fun generate(seed: Long, metaRow: Int, bank: MetaBank): Generated {
        val noise = Noise.gaussian(seed, (noiseInput.numel).toInt())
        val row = bank.row(metaRow)
        val meta = FloatArray(metaInput.numel.toInt()) { row[it % row.size] }
        val start = SystemClock.elapsedRealtimeNanos()
        val values = run(noise, meta)
        val ms = (SystemClock.elapsedRealtimeNanos() - start) / 1e6
        val pixels = Pixels.toArgb(values, 0, height, width, artifact.output.rangeLow, artifact.output.rangeHigh)
        return Generated(pixels, width, height, seed, metaRow, ms)
    }

    override fun close() = module.destroy()
}
