import json

import numpy as np
import pytest
import torch

from lrgan_edge import load_generator
from lrgan_edge.errors import CheckpointError, ExportError
from lrgan_edge.export.common import MANIFEST_NAME, META_BANK_NAME
from lrgan_edge.export.pipeline import export_run

quiet = dict(on_message=lambda m: None)


@pytest.fixture(scope="module")
def exported(run_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("export")
    manifest, artifacts = export_run(run_dir, "all", out, **quiet)
    return out, json.loads(manifest.read_text())


def artifact(manifest, target):
    return next(a for a in manifest["artifacts"] if a["target"] == target)


def test_manifest_and_meta_bank(exported, run_dir):
    out, manifest = exported
    assert {a["file"] for a in manifest["artifacts"]} == {"tiny.onnx", "tiny_xnnpack_fp32.pte", "tiny.mlpackage"}
    assert all((out / a["file"]).exists() for a in manifest["artifacts"])
    bank = manifest["meta_bank"]
    assert bank["shape"] == [8, 512] and bank["dtype"] == "float32" and bank["byte_order"] == "little"
    rows = np.fromfile(out / META_BANK_NAME, dtype="<f4").reshape(bank["shape"])
    np.testing.assert_array_equal(rows, load_generator(run_dir).meta_bank.numpy())
    for a in manifest["artifacts"]:
        assert [i["name"] for i in a["inputs"]] == ["z", "meta"] and a["inputs"][1]["shape"][1] == 512
        assert a["output"]["name"] == "image" and a["output"]["range"] == [-1.0, 1.0]
        assert a["output"]["shape"][1:] == [3, 32, 32] and a["package_version"]


def test_onnx_parity_and_dynamic_batch(exported, run_dir):
    import onnx
    import onnxruntime as ort
    out, manifest = exported
    a = artifact(manifest, "onnx")
    assert a["parity"]["passed"] and a["parity"]["max_abs_diff"] <= 1e-4 and a["opset"] >= 18
    onnx.checker.check_model(str(out / a["file"]), full_check=True)
    ops = {node.op_type for node in onnx.load(str(out / a["file"])).graph.node}
    assert {"MatMul", "Softmax", "InstanceNormalization"} <= ops     # plain LRM; norms left native for ORT
    session = ort.InferenceSession(str(out / a["file"]), providers=["CPUExecutionProvider"])
    G = load_generator(run_dir)
    z, meta = torch.randn(5, G.z_dim), G.meta_bank[:5]
    got = session.run(["image"], {"z": z.numpy(), "meta": meta.numpy()})[0]
    np.testing.assert_allclose(got, G(z, meta).detach().numpy(), atol=1e-4)


def test_executorch_parity_and_delegation_counts(exported, run_dir):
    from executorch.runtime import Runtime
    out, manifest = exported
    a = artifact(manifest, "executorch")
    assert a["parity"]["passed"] and a["parity"]["max_abs_diff"] <= 1e-4
    assert a["delegated_ops"] > 0
    assert a["non_delegated_ops"] == 0, f"compute ops left to portable kernels: {a['non_delegated']}"
    G = load_generator(run_dir)
    z, meta = torch.randn(1, G.z_dim), G.meta_bank[3:4]
    got = Runtime.get().load_program(str(out / a["file"])).load_method("forward").execute([z, meta])[0]
    torch.testing.assert_close(got, G(z, meta).detach(), atol=1e-4, rtol=0)


def test_coreml_program_validated(exported):
    out, manifest = exported
    a = artifact(manifest, "coreml")
    assert a["dtype"] == "float16" and set(a["compute_dtypes"]) <= {"float16", "int32", "bool"}
    assert a["op_types"]["softmax"] == 2                     # the LRM's two maps, as plain softmax ops
    import platform
    if platform.system() != "Darwin":
        assert a["parity"]["passed"] is None and "needs macOS" in a["parity"]["skipped"]


def test_lower_resolution_and_bad_resolution(run_dir, tmp_path):
    manifest, _ = export_run(run_dir, "onnx", tmp_path / "low", resolution=16, **quiet)
    data = json.loads(manifest.read_text())
    assert data["resolution"] == 16 and data["artifacts"][0]["file"] == "tiny_16.onnx"
    assert data["artifacts"][0]["output"]["shape"][2:] == [16, 16] and data["artifacts"][0]["parity"]["passed"]
    with pytest.raises(ExportError, match="this model produces 16, 32"):
        export_run(run_dir, "onnx", tmp_path / "bad", resolution=64, **quiet)


def test_bad_targets_and_dirs(run_dir, exported, tmp_path):
    with pytest.raises(ExportError, match="known targets: onnx, executorch, coreml, all"):
        export_run(run_dir, "tflite", tmp_path / "x", **quiet)
    out, _ = exported
    before = (out / MANIFEST_NAME).read_bytes()
    with pytest.raises(ExportError, match="already holds an export.*--overwrite"):
        export_run(run_dir, "onnx", out, **quiet)
    assert (out / MANIFEST_NAME).read_bytes() == before
    with pytest.raises(CheckpointError, match="does not exist"):
        export_run(tmp_path / "nope", "onnx", tmp_path / "y", **quiet)


def test_overwrite_replaces_the_previous_export(run_dir, tmp_path):
    export_run(run_dir, "onnx", tmp_path, **quiet)
    manifest, _ = export_run(run_dir, "onnx", tmp_path, resolution=16, overwrite=True, **quiet)
    files = [a["file"] for a in json.loads(manifest.read_text())["artifacts"]]
    assert files == ["tiny_16.onnx"] and not (tmp_path / "tiny.onnx").exists()


def test_parity_failure_keeps_artifact_and_marks_it(run_dir, tmp_path, monkeypatch):
    import lrgan_edge.export.onnx as onnx_target
    monkeypatch.setattr(onnx_target, "TOLERANCE", 0.0)
    with pytest.raises(ExportError, match=r"drifts from PyTorch \(tiny.onnx: parity FAILED \(max \|diff\|"):
        export_run(run_dir, "onnx", tmp_path, **quiet)
    manifest = json.loads((tmp_path / MANIFEST_NAME).read_text())
    assert manifest["artifacts"][0]["parity"]["passed"] is False and (tmp_path / "tiny.onnx").exists()


def test_int8_executorch(run_dir, tmp_path):
    manifest, _ = export_run(run_dir, "executorch", tmp_path, quantize="int8", **quiet)
    data = json.loads(manifest.read_text())
    a = next(x for x in data["artifacts"] if x["dtype"] == "int8")
    assert a["file"] == "tiny_xnnpack_int8.pte" and a["non_delegated_ops"] == 0
    assert a["parity"]["samples"] == 16 and a["parity"]["psnr_db"] >= 30
    assert (tmp_path / a["file"]).stat().st_size < (tmp_path / "tiny_xnnpack_fp32.pte").stat().st_size
    with pytest.raises(ExportError, match="--quantize int4: use int8"):
        export_run(run_dir, "executorch", tmp_path / "q", quantize="int4", **quiet)


def test_missing_extra_names_the_install_line(run_dir, tmp_path, monkeypatch):
    import sys
    monkeypatch.setitem(sys.modules, "onnxruntime", None)        # as if the extra were not installed
    with pytest.raises(ExportError, match=r"pip install 'lrgan-edge\[onnx\]'"):
        export_run(run_dir, "onnx", tmp_path, **quiet)
