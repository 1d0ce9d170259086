package dev.lrganedge.demo

import androidx.test.ext.junit.runners.AndroidJUnit4
import androidx.test.platform.app.InstrumentationRegistry
import org.junit.Assert.assertEquals
import org.junit.Assert.assertTrue
import org.junit.Test
import org.junit.runner.RunWith

/**
 * On a device or emulator (`./gradlew connectedAndroidTest`), with a model in the assets: every
 * ExecuTorch program of the manifest loads, runs, and returns the manifest's shape within its range.
 */
@RunWith(AndroidJUnit4::class)
class GeneratorInstrumentedTest {
    @Test
    fun everyProgramReturnsTheManifestShape() {
        val context = InstrumentationRegistry.getInstrumentation().targetContext
        val files = ModelFiles.locate(context)
        val manifest = files.manifest
        assertTrue("the manifest lists no .pte", manifest.programs.isNotEmpty())
        for (program in manifest.programs) {
            val generator = LrganGenerator(files, program)
            try {
                val z = FloatArray(program.inputs.first { it.name == "z" }.numel.toInt()) { 0.1f * (it % 7) }
                val meta = FloatArray(program.inputs.first { it.name == "meta" }.numel.toInt()) { files.metaBank.row(0)[it % files.metaBank.dim] }
                val out = generator.run(z, meta)                      // run() itself checks the shape
                assertEquals(program.output.shape.fold(1L) { a, d -> a * d }, out.size.toLong())
                val slack = 1e-3f
                assertTrue("${program.file}: values outside ${program.output.rangeLow}..${program.output.rangeHigh}",
                           out.all { it >= program.output.rangeLow - slack && it <= program.output.rangeHigh + slack })
                val image = generator.generate(seed = 7, metaRow = 0, bank = files.metaBank)
                assertEquals(manifest.resolution, image.width)
                assertEquals(manifest.resolution * manifest.resolution, image.pixels.size)
            } finally {
                generator.close()
            }
        }
    }
}
