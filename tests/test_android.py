"""android_demo/ checked here, without an Android SDK: the app's pure-Kotlin core is compiled with a
Kotlin compiler from PyPI (kotlin-jupyter-kernel ships one) and run on this JVM against a real export:
the manifest reader against the exporter's schema, the pixel conversion against a reference, the
phone's bench report against the bench schema. What needs a phone is listed in android_demo/README.md.
"""

import json
import shutil
import subprocess
import tomllib
from importlib import metadata
from pathlib import Path

import jsonschema
import numpy as np
import pytest
import torch

from lrgan_edge.errors import ExportError
from lrgan_edge.export.common import MANIFEST_NAME, MANIFEST_SCHEMA
from lrgan_edge.export.pipeline import copy_android_assets, export_run

ROOT = Path(__file__).resolve().parents[1]
APP = ROOT / "android_demo"
CORE = sorted((APP / "app/src/main/java/dev/lrganedge/demo/core").glob("*.kt"))
BENCH_SCHEMA = ROOT / "benchmarks" / "schema.json"


def kotlin_jars() -> Path | None:
    try:
        import run_kotlin_kernel
    except ImportError:
        return None
    return Path(run_kotlin_kernel.__file__).parent / "jars"


@pytest.fixture(scope="module")
def jvm(tmp_path_factory):
    """Runs `Check.kt` (android_demo/jvmcheck) on the compiled core: jvm(*args) -> CompletedProcess."""
    jars, java = kotlin_jars(), shutil.which("java")
    if jars is None or java is None:
        pytest.skip("needs a JDK and the test extra's Kotlin compiler (pip install -e '.[test]'): "
                    f"java={java}, kotlin-jupyter-kernel={'yes' if jars else 'missing'}")
    stdlib = next(jars.glob("kotlin-stdlib-*.jar"))
    libs = [stdlib, *jars.glob("kotlinx-serialization-*-jvm-*.jar")]
    classpath = ":".join(map(str, libs))
    compiler = next(jars.glob("kotlin-jupyter-kernel-*-all.jar"))
    out = tmp_path_factory.mktemp("kotlin-classes")
    compiled = subprocess.run([java, "-cp", f"{compiler}:{stdlib}", "org.jetbrains.kotlin.cli.jvm.K2JVMCompiler",
                               "-no-stdlib", "-no-reflect", "-nowarn", "-cp", classpath, *map(str, CORE),
                               str(APP / "jvmcheck/Check.kt"), "-d", str(out)],
                              capture_output=True, text=True, timeout=600)
    assert compiled.returncode == 0, compiled.stderr

    def run(*args):
        return subprocess.run([java, "-cp", f"{out}:{classpath}", "CheckKt", *map(str, args)],
                              capture_output=True, text=True, timeout=120)
    return run


@pytest.fixture(scope="module")
def assets(run_dir, tmp_path_factory):
    root = tmp_path_factory.mktemp("android")
    export_run(run_dir, "executorch", root / "export", quantize="int8", android_assets=root / "assets",
               on_message=lambda m: None)
    return root


def schema_paths(schema: dict, node: dict | None = None, prefix: str = "") -> tuple[set[str], set[str]]:
    """(every dotted path the schema defines, the required ones); list items are `[]`."""
    node = schema if node is None else node
    if "$ref" in node:
        node = schema["$defs"][node["$ref"].split("/")[-1]]
    props, required = dict(node.get("properties", {})), set(node.get("required", []))
    for part in node.get("allOf", []):
        sub = schema["$defs"][part["$ref"].split("/")[-1]] if "$ref" in part else part
        props = {**sub.get("properties", {}), **props}
        required |= set(sub.get("required", []))
    paths, needed = set(), set()
    for key, sub in props.items():
        path = f"{prefix}{key}"
        paths.add(path)
        if key in required:
            needed.add(path)
        items = sub.get("items") if sub.get("type") == "array" else None
        child, child_prefix = (items, f"{path}[].") if isinstance(items, dict) and ("$ref" in items or "properties" in items) \
            else (sub, f"{path}.")
        if "$ref" in child or "properties" in child or "allOf" in child:
            p, n = schema_paths(schema, child, child_prefix)
            paths |= p
            needed |= n
    return paths, needed


def test_exported_manifests_follow_the_schema(assets):
    schema = json.loads(MANIFEST_SCHEMA.read_text())
    full = json.loads((assets / "export" / MANIFEST_NAME).read_text())
    copied = json.loads((assets / "assets" / MANIFEST_NAME).read_text())
    for manifest in (full, copied):
        jsonschema.validate(manifest, schema)
    assert {a["file"] for a in copied["artifacts"]} == {"tiny_xnnpack_fp32.pte", "tiny_xnnpack_int8.pte"}
    assert sorted(p.name for p in (assets / "assets").iterdir()) == sorted(
        [MANIFEST_NAME, "meta_bank.bin", "tiny_xnnpack_fp32.pte", "tiny_xnnpack_int8.pte"])
    assert copied["model"]["nop_g"] > 0 and 0 < copied["model"]["gflops_per_image_delegable"] <= copied["model"]["gflops_per_image"]
    broken = {**full, "artifacts": [{**full["artifacts"][0], "output": {"name": "image"}}]}
    with pytest.raises(jsonschema.ValidationError):                         # the schema does constrain
        jsonschema.validate(broken, schema)


def test_the_apps_manifest_reader_reads_what_the_exporter_writes(jvm, assets):
    manifest = json.loads((assets / "assets" / MANIFEST_NAME).read_text())
    result = jvm("manifest", assets / "assets" / MANIFEST_NAME)
    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout)
    schema = json.loads(MANIFEST_SCHEMA.read_text())
    paths, required = schema_paths(schema)
    read = set(seen["fields_read"])
    assert read <= paths, f"the app reads names the exporter never writes: {sorted(read - paths)}"
    assert read - required == {"artifacts[].backend"}                      # the one field the app treats as optional
    assert {"schema_version", "model.z_dim", "meta_bank.shape", "artifacts[].inputs[].shape",
            "artifacts[].output.range"} <= read
    assert (seen["name"], seen["resolution"], seen["metadata_source"]) == (
        manifest["name"], manifest["resolution"], manifest["metadata_source"])
    assert seen["model"] == {k: manifest["model"][k] for k in ("preset", "z_dim", "meta_dim", "nop_g", "nop_d")}
    bank = np.fromfile(assets / "assets" / "meta_bank.bin", dtype="<f4").reshape(manifest["meta_bank"]["shape"])
    assert [seen["meta_bank"]["rows"], seen["meta_bank"]["dim"]] == list(bank.shape)
    np.testing.assert_allclose(seen["meta_bank"]["row_sums"], bank.sum(axis=1), rtol=1e-5)
    assert [p["dtype"] for p in seen["programs"]] == ["float32", "int8"]     # fp32 first
    for program in seen["programs"]:
        artifact = next(a for a in manifest["artifacts"] if a["file"] == program["file"])
        assert program["inputs"] == [{"name": i["name"], "shape": i["shape"]} for i in artifact["inputs"]]
        assert program["output_shape"] == artifact["output"]["shape"] and program["batch"] == 1
        assert program["output_range"] == artifact["output"]["range"] and program["backend"] == "xnnpack"
        assert program["parity_passed"] is True


def test_the_apps_manifest_reader_names_what_is_wrong(jvm, assets, tmp_path):
    manifest = json.loads((assets / "assets" / MANIFEST_NAME).read_text())
    bank = (assets / "assets" / "meta_bank.bin").read_bytes()
    output = manifest["artifacts"][0]["output"]
    cases = [("manifest.json lacks model; re-export", {k: v for k, v in manifest.items() if k != "model"}, bank),
             ("schema_version 2; this app reads 1", {**manifest, "schema_version": 2}, bank),
             ("artifacts[].output.range must be [low, high]",
              {**manifest, "artifacts": [{**manifest["artifacts"][0], "output": {**output, "range": [1]}}]}, bank),
             ("meta_bank.bin has 16380 bytes; the manifest's shape [8, 512] needs 16384", manifest, bank[:-4])]
    for fragment, broken, bank_bytes in cases:
        (tmp_path / MANIFEST_NAME).write_text(json.dumps(broken))
        (tmp_path / "meta_bank.bin").write_bytes(bank_bytes)
        result = jvm("manifest", tmp_path / MANIFEST_NAME)
        assert result.returncode == 3 and fragment in result.stderr, (fragment, result.stderr)


def reference_argb(images: np.ndarray, low: float = -1.0, high: float = 1.0) -> np.ndarray:
    """The pixel mapping the app promises (Pixels.kt), in numpy: float32 arithmetic, nearest with ties up."""
    x = (images.astype(np.float32) - np.float32(low)) * np.float32(np.float32(255) / np.float32(high - low))
    v = np.where(np.isnan(x), 0, np.clip(np.floor(x.astype(np.float64) + 0.5), 0, 255)).astype(np.uint32)
    return (np.uint32(0xFF) << 24) | (v[:, 0] << 16) | (v[:, 1] << 8) | v[:, 2]


def run_pixels(jvm, tmp_path, images: np.ndarray, low=-1.0, high=1.0) -> np.ndarray:
    n, _, h, w = images.shape
    images.astype("<f4").tofile(tmp_path / "in.bin")
    result = jvm("pixels", tmp_path / "in.bin", tmp_path / "out.bin", n, h, w, low, high)
    assert result.returncode == 0, result.stderr
    return np.fromfile(tmp_path / "out.bin", dtype="<u4").reshape(n, h, w)


def test_pixel_conversion_matches_the_reference_and_the_desktop_png(jvm, tmp_path):
    rng = np.random.default_rng(0)
    images = rng.uniform(-1.2, 1.2, size=(3, 3, 17, 9)).astype(np.float32)
    ties = (np.arange(256, dtype=np.float32) + 0.5) / np.float32(127.5) - 1      # values that land on .5 exactly
    images[0, :, 0, :9] = ties[:9]
    images[1, 0, 0, 0], images[1, 1, 0, 0], images[1, 2, 0, 0] = np.nan, np.inf, -np.inf
    argb = run_pixels(jvm, tmp_path, images)
    np.testing.assert_array_equal(argb, reference_argb(images).reshape(argb.shape))
    assert argb[1, 0, 0] == 0xFF00FF00                                       # NaN -> 0, +inf -> 255, -inf -> 0
    # The phone shows what `lrgan-edge sample` writes to PNG (torchvision's rounding), within 1 at exact ties.
    from torchvision.utils import make_grid
    clean = np.nan_to_num(images[[0, 2]], nan=0.0)
    grid = make_grid(torch.from_numpy(clean) * 0.5 + 0.5, nrow=1, padding=0)
    png = grid.mul(255).add_(0.5).clamp_(0, 255).to(torch.uint8).numpy().reshape(3, 2, 17, 9).transpose(1, 0, 2, 3)
    phone = np.stack([(argb[[0, 2]] >> s) & 0xFF for s in (16, 8, 0)], axis=1)
    assert np.abs(phone.astype(int) - png.astype(int)).max() <= 1
    other = run_pixels(jvm, tmp_path, np.zeros((1, 3, 2, 2), np.float32), low=0.0, high=1.0)   # range from the manifest
    assert (other == 0xFF000000).all()


def test_the_phone_bench_report_follows_the_bench_schema_and_merges(jvm, assets, run_dir, tmp_path):
    seconds = [0.020, 0.012, 0.011, 0.013, 0.030]
    result = jvm("bench", assets / "assets" / MANIFEST_NAME, tmp_path / "phone.json", *seconds)
    assert result.returncode == 0, result.stderr
    phone = json.loads((tmp_path / "phone.json").read_text())
    jsonschema.validate(phone, json.loads(BENCH_SCHEMA.read_text()))
    rows = {r["runtime"]: r for r in phone["rows"]}
    assert set(rows) == {"android-xnnpack-fp32", "android-xnnpack-int8"}
    row = rows["android-xnnpack-int8"]
    from lrgan_edge.benchmarks.worker import percentile
    assert row["single"]["latency_ms"]["p50"] == pytest.approx(1e3 * percentile(seconds, 50))     # Kotlin == Python
    assert row["single"]["latency_ms"]["p90"] == pytest.approx(1e3 * percentile(seconds, 90))
    assert row["batch"]["seconds_per_100"]["median"] == pytest.approx(100 * percentile(seconds, 50))
    assert row["artifact"]["bytes"] == (assets / "assets" / "tiny_xnnpack_int8.pte").stat().st_size
    from lrgan_edge.benchmarks.bench import BenchSettings, merge_reports, run_bench
    desktop = run_bench(tmp_path / "desktop", run_dir=run_dir, runtimes="torch-cpu", baselines=[],
                        settings=BenchSettings(batch_size=1, images=2, repeats=1, warmup=0, single_images=0),
                        on_message=lambda m: None)
    paths = merge_reports([desktop["json"], tmp_path / "phone.json"], tmp_path / "merged", command="test")
    merged = json.loads(paths["json"].read_text())
    jsonschema.validate(merged, json.loads(BENCH_SCHEMA.read_text()))
    assert merged["merged_from"][1] == "jvm-check (test)"
    assert {r["runtime"] for r in merged["rows"]} == {"torch-cpu", "android-xnnpack-fp32", "android-xnnpack-int8"}
    table = paths["markdown"].read_text()
    assert "IT android-xnnpack-int8 (s)" in table and "IT torch-cpu (s)" in table   # one table, side by side
    with pytest.raises(Exception, match="not an lrgan-edge bench report"):
        merge_reports([desktop["json"], assets / "assets" / MANIFEST_NAME], tmp_path / "bad")


def test_gradle_pins_the_executorch_the_exporter_uses():
    versions = tomllib.loads((APP / "gradle/libs.versions.toml").read_text())["versions"]
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    pinned = next(r.split("==")[1] for r in project["executorch"] if r.startswith("executorch=="))
    assert versions["executorch"] == pinned == metadata.version("executorch")
    app = (APP / "app/build.gradle.kts").read_text()
    assert "implementation(libs.executorch.android)" in app and '"arm64-v8a", "x86_64"' in app
    catalog = (APP / "gradle/libs.versions.toml").read_text()
    assert 'module = "org.pytorch:executorch-android", version.ref = "executorch"' in catalog


def test_android_assets_need_a_pte_and_replace_an_earlier_copy(assets, tmp_path):
    dest = tmp_path / "assets"
    shutil.copytree(assets / "assets", dest)
    manifest = json.loads((dest / MANIFEST_NAME).read_text())
    manifest["artifacts"] = manifest["artifacts"] + [{**manifest["artifacts"][0], "file": "old_model.pte"}]
    (dest / MANIFEST_NAME).write_text(json.dumps(manifest))
    (dest / "old_model.pte").write_bytes(b"stale")
    copied = copy_android_assets(assets / "export", dest)
    assert not (dest / "old_model.pte").exists() and sorted(copied) == sorted(p.name for p in dest.iterdir())
    onnx_only = tmp_path / "onnx_export"
    onnx_only.mkdir()
    (onnx_only / MANIFEST_NAME).write_text(json.dumps({"artifacts": [{"file": "m.onnx", "target": "onnx"}]}))
    with pytest.raises(ExportError, match="--android-assets needs an ExecuTorch artifact; use --target executorch"):
        copy_android_assets(onnx_only, tmp_path / "nowhere")
