"""ONNX: the dynamo exporter, opset 18, dynamic batch; full checker; parity with ONNX Runtime."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import torch

from lrgan_edge.errors import ExportError

from .common import Artifact, ExportGenerator, example_inputs, parity_report

OPSET = 18
TOLERANCE = 1e-4
INSTALL_HINT = "pip install 'lrgan-edge[onnx]'  (onnx, onnxruntime, onnxscript)"


def export_onnx(module: ExportGenerator, out: Path, name: str) -> Artifact:
    try:
        import onnx
        import onnxruntime as ort
    except ImportError:
        raise ExportError(f"the onnx target needs its extra: {INSTALL_HINT}") from None
    file = out / f"{name}.onnx"
    z, meta = example_inputs(module, batch=2)
    batch = torch.export.Dim("batch", min=1, max=1024)
    with contextlib.redirect_stdout(io.StringIO()):      # the exporter narrates each pass on stdout
        program = torch.onnx.export(module, (z, meta), dynamo=True, opset_version=OPSET, verbose=False,
                                    input_names=["z", "meta"], output_names=["image"],
                                    dynamic_shapes={"z": {0: batch}, "meta": {0: batch}})
    program.save(str(file))
    onnx.checker.check_model(str(file), full_check=True)

    session = ort.InferenceSession(str(file), providers=["CPUExecutionProvider"])
    z, meta = example_inputs(module, batch=3, seed=1)         # another batch size: the batch is dynamic
    with torch.no_grad():
        reference = module(z, meta)
    got = session.run(["image"], {"z": z.numpy(), "meta": meta.numpy()})[0]
    parity = parity_report(reference, got, TOLERANCE, f"onnxruntime {ort.__version__} CPU")
    return Artifact(file.name, "onnx", "float32", parity, {"batch": "batch", "opset": OPSET})
