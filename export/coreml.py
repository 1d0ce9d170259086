"""Core ML: an ML program (iOS 17+), fp16 by default. Prediction needs macOS: on other systems
the converted program is validated (inputs, output, precision, op types) and prediction is
skipped with the reason recorded."""

from __future__ import annotations

import logging
import platform
from collections import Counter
from pathlib import Path

import torch

from lrgan_edge.errors import ExportError

from .common import Artifact, ExportGenerator, parity_report

TOLERANCE = {"float16": 2e-2, "float32": 1e-4}
# the same graph as the .pte, so one set of rewrites is validated on both
FRIENDLY = True
INSTALL_HINT = "pip install 'lrgan-edge[coreml]'  (coremltools==9.0)"


def validate_program(model, module: ExportGenerator, precision: str) -> dict[str, object]:
    """Inputs, output and precision of the converted program as the manifest promises them."""
    spec = model.get_spec()
    inputs = {i.name: list(i.type.multiArrayType.shape) for i in spec.description.input}
    expected = dict(zip(module.input_names, module.input_shapes(1)))
    if inputs != expected:
        raise ExportError(f"Core ML program inputs {inputs} differ from {expected}")
    outputs = [o.name for o in spec.description.output]
    if outputs != ["image"]:
        raise ExportError(f"Core ML program outputs {outputs}; expected ['image']")
    from coremltools.proto import MIL_pb2
    operations = [op for f in spec.mlProgram.functions.values()
                  for block in f.block_specializations.values() for op in block.operations]
    ops = Counter(op.type for op in operations)
    compute_dtypes = Counter(MIL_pb2.DataType.Name(o.type.tensorType.dataType).lower()
                             for op in operations if op.type not in ("const", "cast") for o in op.outputs)
    want = precision.replace("float", "FLOAT").lower()
    if set(compute_dtypes) - {want, "int32", "bool"}:
        raise ExportError(f"Core ML program asked for {precision} computes in {dict(compute_dtypes)}")
    return {"op_types": dict(sorted(ops.items())), "compute_dtypes": dict(compute_dtypes),
            "spec_version": spec.specificationVersion}


def export_coreml(module: ExportGenerator, out: Path, name: str, precision: str = "float16") -> Artifact:
    logging.getLogger("coremltools").setLevel(logging.ERROR)   # Linux: "Failed to load _MLModelProxy" is expected
    try:
        import coremltools as ct
    except ImportError:
        raise ExportError(f"the coreml target needs its extra: {INSTALL_HINT}") from None
    if precision not in TOLERANCE:
        raise ExportError(f"Core ML precision {precision!r}: use float16 or float32")
    example = module.example_inputs(batch=1)
    program = torch.export.export(module, example).run_decompositions({})
    model = ct.convert(program, inputs=[ct.TensorType(name=n, shape=x.shape) for n, x in zip(module.input_names, example)],
                       outputs=[ct.TensorType(name="image")], convert_to="mlprogram",
                       minimum_deployment_target=ct.target.iOS17,
                       compute_precision=ct.precision.FLOAT16 if precision == "float16" else ct.precision.FLOAT32)
    suffix = "" if precision == "float16" else "_fp32"
    file = out / f"{name}{suffix}.mlpackage"
    model.save(str(file))
    extra = {"batch": 1, "minimum_deployment_target": "iOS17", **validate_program(model, module, precision)}
    tolerance = TOLERANCE[precision]
    if platform.system() == "Darwin":
        inputs = module.example_inputs(batch=1, seed=1)
        with torch.no_grad():
            reference = module(*inputs)
        got = model.predict({n: x.numpy() for n, x in zip(module.input_names, inputs)})["image"]
        parity = parity_report(reference, got, tolerance, f"coremltools {ct.__version__} predict")
    else:
        reason = f"Core ML prediction needs macOS (this is {platform.system()}); program validated only"
        print(f"coreml: {reason}")
        parity = {"runtime": None, "passed": None, "skipped": reason, "tolerance": tolerance}
    return Artifact(file.name, "coreml", precision, parity, extra)
