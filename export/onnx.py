"""ONNX: the dynamo exporter, opset 18, dynamic batch; full checker; parity with ONNX Runtime."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import torch

from lrgan_edge.errors import ExportError

from .common import Artifact, ExportGenerator, parity_report

OPSET = 18
TOLERANCE = 1e-4
# ONNX Runtime runs InstanceNormalization, Resize and Conv natively: the training forms
# run 1.6x faster there than the delegable rewrites (ConvTranspose is slow in ORT; see benchmarks/RESULTS.md)
FRIENDLY = False
INSTALL_HINT = "pip install 'lrgan-edge[onnx]'  (onnx, onnxruntime, onnxscript)"


def export_onnx(module: ExportGenerator, out: Path, name: str) -> Artifact:
    try:
        import onnx
        import onnxruntime as ort
    except ImportError:
        raise ExportError(f"the onnx target needs its extra: {INSTALL_HINT}") from None
    file = out / f"{name}.onnx"
    names = list(module.input_names)
    batch = torch.export.Dim("batch", min=1, max=1024)
    with contextlib.redirect_stdout(io.StringIO()):      # the exporter narrates each pass on stdout
        program = torch.onnx.export(module, module.example_inputs(batch=2), dynamo=True, opset_version=OPSET,
                                    verbose=False, input_names=names, output_names=["image"],
                                    dynamic_shapes={n: {0: batch} for n in names})
    program.save(str(file))
    onnx.checker.check_model(str(file), full_check=True)

    session = ort.InferenceSession(str(file), providers=["CPUExecutionProvider"])
    inputs = module.example_inputs(batch=3, seed=1)          # another batch size: the batch is dynamic
    with torch.no_grad():
        reference = module(*inputs)
    got = session.run(["image"], {n: x.numpy() for n, x in zip(names, inputs)})[0]
    parity = parity_report(reference, got, TOLERANCE, f"onnxruntime {ort.__version__} CPU")
    return Artifact(file.name, "onnx", "float32", parity, {"batch": "batch", "opset": OPSET})
