package dev.lrganedge.demo

import android.app.Application
import android.graphics.Bitmap
import android.os.Bundle
import androidx.activity.ComponentActivity
import androidx.activity.compose.setContent
import androidx.compose.foundation.Image
import androidx.compose.foundation.layout.Arrangement
import androidx.compose.foundation.layout.Column
import androidx.compose.foundation.layout.Row
import androidx.compose.foundation.layout.fillMaxSize
import androidx.compose.foundation.layout.fillMaxWidth
import androidx.compose.foundation.layout.padding
import androidx.compose.foundation.layout.aspectRatio
import androidx.compose.material3.Button
import androidx.compose.material3.FilterChip
import androidx.compose.material3.MaterialTheme
import androidx.compose.material3.OutlinedButton
import androidx.compose.material3.Surface
import androidx.compose.material3.Text
import androidx.compose.runtime.Composable
import androidx.compose.runtime.collectAsState
import androidx.compose.runtime.getValue
import androidx.compose.ui.Alignment
import androidx.compose.ui.Modifier
import androidx.compose.ui.graphics.FilterQuality
import androidx.compose.ui.graphics.asImageBitmap
import androidx.compose.ui.unit.dp
import androidx.lifecycle.AndroidViewModel
import androidx.lifecycle.viewModelScope
import androidx.lifecycle.viewmodel.compose.viewModel
import dev.lrganedge.demo.core.Artifact
import dev.lrganedge.demo.core.Manifest
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.asCoroutineDispatcher
import kotlinx.coroutines.flow.MutableStateFlow
import kotlinx.coroutines.flow.StateFlow
import kotlinx.coroutines.flow.update
import kotlinx.coroutines.launch
import kotlinx.coroutines.withContext
import java.util.concurrent.Executors
import kotlin.random.Random

data class UiState(
    val manifest: Manifest? = null,
    val program: Artifact? = null,
    val metaRow: Int = 0,
    val busy: Boolean = true,
    val image: Bitmap? = null,
    val seed: Long? = null,
    val latencyMs: Double? = null,
    val status: String = "loading the model…",
)

/**
 * Holds the loaded program. All ExecuTorch work runs on one background thread (the module is not
 * thread-safe), never on the main thread; the module is released in `finally` when the program
 * changes and when the screen goes away.
 */
class GeneratorViewModel(app: Application) : AndroidViewModel(app) {
    private val worker = Executors.newSingleThreadExecutor().asCoroutineDispatcher()
    private val _state = MutableStateFlow(UiState())
    val state: StateFlow<UiState> = _state
    private var files: ModelFiles? = null
    private var generator: LrganGenerator? = null

    init {
        viewModelScope.launch {
            try {
                val (f, first) = withContext(worker) {
                    val f = ModelFiles.locate(getApplication())
                    f to f.manifest.programs.firstOrNull()
                }
                files = f
                if (first == null) {
                    _state.update { it.copy(busy = false, status = "the manifest lists no ExecuTorch program; export with --target executorch") }
                    return@launch
                }
                _state.update { it.copy(manifest = f.manifest, status = "model from ${f.source}: ${f.manifest.name}") }
                select(first)
            } catch (e: Exception) {
                _state.update { it.copy(busy = false, status = "error: ${e.message}") }
            }
        }
    }

    fun select(program: Artifact) = viewModelScope.launch {
        val f = files ?: return@launch
        _state.update { it.copy(busy = true, program = program) }
        try {
            withContext(worker) {
                generator?.close()
                generator = null
                generator = LrganGenerator(f, program)
            }
            _state.update { it.copy(busy = false, status = "${program.file} (${program.dtype}) loaded") }
        } catch (e: Exception) {
            _state.update { it.copy(busy = false, status = "error loading ${program.file}: ${e.message}") }
        }
    }

    fun pickRow(delta: Int) {
        val rows = files?.manifest?.metaBank?.rows ?: return
        _state.update { it.copy(metaRow = Math.floorMod(it.metaRow + delta, rows)) }
    }

    fun generate() = viewModelScope.launch {
        val f = files ?: return@launch
        val g = generator ?: return@launch
        val seed = Random.nextLong(0, 1L shl 53)
        val row = _state.value.metaRow
        _state.update { it.copy(busy = true) }
        try {
            val out = withContext(worker) { g.generate(seed, row, f.metaBank) }
            val bitmap = withContext(Dispatchers.Default) {
                Bitmap.createBitmap(out.pixels, out.width, out.height, Bitmap.Config.ARGB_8888)
            }
            _state.update { it.copy(busy = false, image = bitmap, seed = seed, latencyMs = out.latencyMs) }
        } catch (e: Exception) {
            _state.update { it.copy(busy = false, status = "error: ${e.message}") }
        }
    }

    override fun onCleared() {
        val g = generator
        generator = null
        worker.executor.execute {
            try {
                g?.close()
            } finally {
                worker.close()
            }
        }
    }
}

class MainActivity : ComponentActivity() {
    override fun onCreate(savedInstanceState: Bundle?) {
        super.onCreate(savedInstanceState)
        setContent {
            MaterialTheme {
                Surface(Modifier.fillMaxSize()) { GenerateScreen() }
            }
        }
    }
}

@Composable
fun GenerateScreen(vm: GeneratorViewModel = viewModel()) {
    val s by vm.state.collectAsState()
    Column(Modifier.padding(16.dp), verticalArrangement = Arrangement.spacedBy(12.dp)) {
        Text("LRGAN on ExecuTorch", style = MaterialTheme.typography.headlineSmall)
        s.manifest?.let { m ->
            Row(horizontalArrangement = Arrangement.spacedBy(8.dp)) {
                m.programs.forEach { p ->
                    FilterChip(selected = p == s.program, onClick = { vm.select(p) }, enabled = !s.busy,
                               label = { Text(p.dtype) })
                }
            }
            Row(verticalAlignment = Alignment.CenterVertically, horizontalArrangement = Arrangement.spacedBy(8.dp)) {
                OutlinedButton(onClick = { vm.pickRow(-1) }, enabled = !s.busy) { Text("◀") }
                Text("metadata row ${s.metaRow} of ${m.metaBank.rows}")
                OutlinedButton(onClick = { vm.pickRow(1) }, enabled = !s.busy) { Text("▶") }
            }
        }
        Button(onClick = { vm.generate() }, enabled = !s.busy && s.program != null, modifier = Modifier.fillMaxWidth()) {
            Text("Generate")
        }
        s.image?.let {
            Image(it.asImageBitmap(), contentDescription = "generated image", filterQuality = FilterQuality.None,
                  modifier = Modifier.fillMaxWidth().aspectRatio(1f))
        }
        s.seed?.let { Text("seed $it · ${"%.1f".format(s.latencyMs)} ms") }
        Text(s.status, style = MaterialTheme.typography.bodySmall)
    }
}
