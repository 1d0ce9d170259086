package dev.lrganedge.demo.core

import java.util.Random

/** The generator's noise input: standard normal values from a seed (the same seed, the same image). */
object Noise {
    fun gaussian(seed: Long, count: Int): FloatArray {
        val random = Random(seed)
        return FloatArray(count) { random.nextGaussian().toFloat() }
    }
}
