package dev.lrganedge.demo.core

import java.nio.ByteBuffer
import java.nio.ByteOrder

/**
 * The metadata bank written by the exporter (`meta_bank.bin`): rows of VGG-16 relu5_3 features of
 * training images, little-endian float32, row-major, shape from the manifest. A row stands in for
 * the "metadata" input, so the phone never runs VGG.
 */
class MetaBank(val rows: Int, val dim: Int, private val values: FloatArray) {
    init {
        require(values.size == rows * dim) { "meta bank holds ${values.size} values, expected $rows x $dim" }
    }

    fun row(index: Int): FloatArray {
        require(index in 0 until rows) { "meta bank row $index out of 0..${rows - 1}" }
        return values.copyOfRange(index * dim, (index + 1) * dim)
    }

    companion object {
        fun read(bytes: ByteArray, spec: MetaBankSpec): MetaBank {
            if (spec.dtype != "float32" || spec.byteOrder != "little" || spec.layout != "row-major") {
                throw ManifestException("meta bank is ${spec.dtype}/${spec.byteOrder}/${spec.layout}; this app reads float32/little/row-major")
            }
            val expected = spec.rows.toLong() * spec.dim * 4
            if (bytes.size.toLong() != expected) {
                throw ManifestException("${spec.file} has ${bytes.size} bytes; the manifest's shape [${spec.rows}, ${spec.dim}] needs $expected — copy the export again")
            }
            val values = FloatArray(spec.rows * spec.dim)
            ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN).asFloatBuffer().get(values)
            return MetaBank(spec.rows, spec.dim, values)
        }
    }
}
