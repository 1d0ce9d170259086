package dev.lrganedge.demo.core

/** Generator output to Android pixels. */
object Pixels {
    /**
     * Image [index] of an NCHW float tensor with values in [low, high] (the manifest's output range,
     * [-1, 1]) to ARGB_8888 ints, row-major — what `Bitmap.createBitmap(IntArray, w, h, ARGB_8888)`
     * takes. Each channel maps to round((v - low) / (high - low) * 255) (ties up), clamped to
     * 0..255; NaN becomes 0; alpha is opaque. The same mapping `lrgan-edge sample` uses for PNGs.
     */
    fun toArgb(data: FloatArray, index: Int, height: Int, width: Int, low: Float = -1f, high: Float = 1f): IntArray {
        val plane = height * width
        val start = index * 3 * plane
        require(index >= 0 && data.size >= start + 3 * plane) {
            "tensor of ${data.size} floats holds no image $index of 3x${height}x$width"
        }
        require(high > low) { "output range [$low, $high] is empty" }
        val scale = 255f / (high - low)
        return IntArray(plane) { i ->
            val r = channel(data[start + i], low, scale)
            val g = channel(data[start + plane + i], low, scale)
            val b = channel(data[start + 2 * plane + i], low, scale)
            (0xFF shl 24) or (r shl 16) or (g shl 8) or b
        }
    }

    private fun channel(v: Float, low: Float, scale: Float): Int {
        if (v.isNaN()) return 0
        val x = (v - low) * scale
        if (x <= 0f) return 0
        if (x >= 255f) return 255
        val whole = x.toInt()                              // floor, as 0 < x < 255
        return if (x - whole >= 0.5f) whole + 1 else whole  // nearest, ties up; x - whole is exact
    }
}
