package dev.lrganedge.demo.core

import kotlinx.serialization.json.Json
import kotlinx.serialization.json.JsonArray
import kotlinx.serialization.json.JsonElement
import kotlinx.serialization.json.JsonNull
import kotlinx.serialization.json.JsonObject
import kotlinx.serialization.json.JsonPrimitive
import kotlinx.serialization.json.booleanOrNull
import kotlinx.serialization.json.doubleOrNull
import kotlinx.serialization.json.longOrNull

/**
 * `manifest.json` of an lrgan-edge export (schema: export/manifest.schema.json in the Python
 * package). Everything the app knows about the model comes from here: input names and shapes,
 * the output's shape and value range, the metadata bank's shape. Nothing is hard-coded.
 */
data class TensorSpec(val name: String, val shape: List<Long>, val dtype: String) {
    /** Elements per tensor; symbolic dimensions (ONNX's "batch") count as 1. */
    val numel: Long get() = shape.fold(1L) { acc, d -> acc * maxOf(d, 1L) }
}

data class OutputSpec(
    val name: String,
    val shape: List<Long>,
    val dtype: String,
    val rangeLow: Float,
    val rangeHigh: Float,
    val layout: String,
)

data class Artifact(
    val file: String,
    val target: String,
    val dtype: String,
    val backend: String?,
    val inputs: List<TensorSpec>,
    val output: OutputSpec,
    val parityPassed: Boolean?,
) {
    /** The static batch size the artifact was exported with. */
    val batch: Int get() = output.shape[0].toInt()
}

data class MetaBankSpec(val file: String, val rows: Int, val dim: Int, val dtype: String, val byteOrder: String, val layout: String)

data class ModelInfo(
    val preset: String,
    val zDim: Int,
    val metaDim: Int,
    val nopG: Long,
    val nopD: Long,
    val gflopsPerImage: Double,
    val gflopsPerImageDelegable: Double,
)

data class Manifest(
    val schemaVersion: Int,
    val name: String,
    val packageVersion: String,
    val resolution: Int,
    val metadataSource: String,
    val model: ModelInfo,
    val metaBank: MetaBankSpec,
    val artifacts: List<Artifact>,
) {
    /** The ExecuTorch programs, fp32 first. */
    val programs: List<Artifact>
        get() = artifacts.filter { it.target == "executorch" }.sortedBy { if (it.dtype == "float32") 0 else 1 }
}

class ManifestException(message: String) : IllegalArgumentException(message)

/**
 * Parses `manifest.json`. Every key is read through [Node], which records its dotted path in
 * [fieldsRead]: the project's tests run this reader on a real export and compare those paths
 * with the JSON schema the exporter writes against, so the two sides cannot drift apart.
 */
class ManifestReader {
    val fieldsRead = sortedSetOf<String>()

    fun parse(text: String): Manifest {
        val root = try {
            Json.parseToJsonElement(text)
        } catch (e: IllegalArgumentException) {
            throw ManifestException("manifest.json is not valid JSON: ${e.message}")
        }
        val m = Node(root, "", this)
        val version = m.int("schema_version")
        if (version != SCHEMA_VERSION) {
            throw ManifestException("manifest schema_version $version; this app reads $SCHEMA_VERSION — re-export with a matching lrgan-edge")
        }
        val model = m.obj("model")
        val bank = m.obj("meta_bank")
        val shape = bank.longs("shape")
        if (shape.size != 2) throw ManifestException("meta_bank.shape must be [rows, dim], got $shape")
        return Manifest(
            schemaVersion = version,
            name = m.str("name"),
            packageVersion = m.str("package_version"),
            resolution = m.int("resolution"),
            metadataSource = m.str("metadata_source"),
            model = ModelInfo(
                preset = model.str("preset"),
                zDim = model.int("z_dim"),
                metaDim = model.int("meta_dim"),
                nopG = model.long("nop_g"),
                nopD = model.long("nop_d"),
                gflopsPerImage = model.double("gflops_per_image"),
                gflopsPerImageDelegable = model.double("gflops_per_image_delegable"),
            ),
            metaBank = MetaBankSpec(
                file = bank.str("file"),
                rows = shape[0].toInt(),
                dim = shape[1].toInt(),
                dtype = bank.str("dtype"),
                byteOrder = bank.str("byte_order"),
                layout = bank.str("layout"),
            ),
            artifacts = m.list("artifacts").map { artifact(it) },
        )
    }

    private fun artifact(a: Node): Artifact {
        val out = a.obj("output")
        val range = out.doubles("range")
        if (range.size != 2) throw ManifestException("${out.path}.range must be [low, high], got $range")
        return Artifact(
            file = a.str("file"),
            target = a.str("target"),
            dtype = a.str("dtype"),
            backend = a.optStr("backend"),
            inputs = a.list("inputs").map { TensorSpec(it.str("name"), it.longs("shape"), it.str("dtype")) },
            output = OutputSpec(
                name = out.str("name"),
                shape = out.longs("shape"),
                dtype = out.str("dtype"),
                rangeLow = range[0].toFloat(),
                rangeHigh = range[1].toFloat(),
                layout = out.str("layout"),
            ),
            parityPassed = a.obj("parity").optBool("passed"),
        )
    }

    /** A JSON object at a dotted path (list items as `[]`), reading keys with clear errors. */
    private class Node(val element: JsonElement, val path: String, val reader: ManifestReader) {
        private val obj: JsonObject = element as? JsonObject
            ?: throw ManifestException("${path.ifEmpty { "manifest" }} must be an object")

        private fun child(key: String): JsonElement? {
            val p = if (path.isEmpty()) key else "$path.$key"
            reader.fieldsRead.add(p)
            return obj[key]
        }

        private fun need(key: String): JsonElement =
            child(key)?.takeIf { it !is JsonNull } ?: throw ManifestException("manifest.json lacks ${at(key)}; re-export with lrgan-edge")

        private fun at(key: String) = if (path.isEmpty()) key else "$path.$key"

        private fun prim(key: String): JsonPrimitive =
            need(key) as? JsonPrimitive ?: throw ManifestException("${at(key)} must be a value")

        fun str(key: String): String = prim(key).let { if (it.isString) it.content else throw ManifestException("${at(key)} must be a string") }
        fun optStr(key: String): String? = (child(key) as? JsonPrimitive)?.takeIf { it.isString }?.content
        fun long(key: String): Long = prim(key).longOrNull ?: throw ManifestException("${at(key)} must be an integer")
        fun int(key: String): Int = long(key).toInt()
        fun double(key: String): Double = prim(key).doubleOrNull ?: throw ManifestException("${at(key)} must be a number")
        fun optBool(key: String): Boolean? = (child(key) as? JsonPrimitive)?.booleanOrNull
        fun obj(key: String): Node = Node(need(key), at(key), reader)

        private fun array(key: String): JsonArray = need(key) as? JsonArray ?: throw ManifestException("${at(key)} must be a list")
        fun list(key: String): List<Node> = array(key).map { Node(it, "${at(key)}[]", reader) }

        /** Integers; a symbolic dimension (a string such as "batch") becomes -1. */
        fun longs(key: String): List<Long> = array(key).map { e ->
            val p = e as? JsonPrimitive ?: throw ManifestException("${at(key)} must hold values")
            if (p.isString) -1L else p.longOrNull ?: throw ManifestException("${at(key)} must hold integers")
        }

        fun doubles(key: String): List<Double> = array(key).map {
            (it as? JsonPrimitive)?.doubleOrNull ?: throw ManifestException("${at(key)} must hold numbers")
        }
    }

    companion object {
        const val SCHEMA_VERSION = 1
    }
}
