package dev.lrganedge.demo

import android.content.Context
import dev.lrganedge.demo.core.Manifest
import dev.lrganedge.demo.core.ManifestException
import dev.lrganedge.demo.core.ManifestReader
import dev.lrganedge.demo.core.MetaBank
import java.io.File

/**
 * Where the exported model lives on the phone. Files pushed with adb to the app's external files
 * folder win (no rebuild needed to try another export):
 *
 *     adb push EXPORT_DIR/. /sdcard/Android/data/dev.lrganedge.demo/files/model/
 *
 * otherwise the APK's assets (`lrgan-edge export ... --android-assets app/src/main/assets`) are
 * copied once to internal storage, because ExecuTorch loads a program from a file path.
 */
class ModelFiles private constructor(val dir: File, val source: String) {
    val manifest: Manifest by lazy { ManifestReader().parse(File(dir, MANIFEST).readText()) }
    val metaBank: MetaBank by lazy { MetaBank.read(File(dir, manifest.metaBank.file).readBytes(), manifest.metaBank) }

    fun file(name: String): File {
        val f = File(dir, name)
        if (!f.isFile) throw ManifestException("$name is listed in the manifest but missing from $dir ($source); copy the whole export")
        return f
    }

    companion object {
        const val MANIFEST = "manifest.json"

        fun locate(context: Context): ModelFiles {
            val pushed = context.getExternalFilesDir(null)?.let { File(it, "model") }
            if (pushed != null && File(pushed, MANIFEST).isFile) return ModelFiles(pushed, "adb push")
            val assets = context.assets.list("")?.toSet().orEmpty()
            if (MANIFEST !in assets) {
                throw ManifestException("no model: run `lrgan-edge export RUN --target executorch --out EXP " +
                    "--android-assets android_demo/app/src/main/assets` and rebuild, or adb push an export to ${pushed ?: "files/model"}")
            }
            val dir = File(context.filesDir, "model")
            val bundled = context.assets.open(MANIFEST).use { it.readBytes() }
            val copied = File(dir, MANIFEST)
            if (!copied.isFile || !copied.readBytes().contentEquals(bundled)) {     // a new APK brings a new model
                dir.deleteRecursively()
                dir.mkdirs()
                val manifest = ManifestReader().parse(String(bundled))
                for (name in manifest.programs.map { it.file } + manifest.metaBank.file) {
                    context.assets.open(name).use { input -> File(dir, name).outputStream().use { input.copyTo(it) } }
                }
                copied.writeBytes(bundled)                                            // last: marks a complete copy
            }
            return ModelFiles(dir, "assets")
        }
    }
}
