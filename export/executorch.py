"""ExecuTorch: XNNPACK-delegated `.pte` (fp32), checked through the ExecuTorch Python runtime."""

from __future__ import annotations

import math
from collections import Counter
from pathlib import Path

import torch

from lrgan_edge.errors import ExportError

from .common import Artifact, ExportGenerator, parity_report

TOLERANCE = 1e-4           # fp32: max |diff| against eager PyTorch
MIN_PSNR_DB_INT8 = 30.0    # int8: PSNR against eager fp32 PyTorch over PSNR_SAMPLES samples
PSNR_SAMPLES = 16
CALIBRATION_SAMPLES = 32
# XNNPACK delegates every op only in the rewritten forms (export/friendly.py)
FRIENDLY = True
INSTALL_HINT = "pip install 'lrgan-edge[executorch]'  (executorch==1.5.1)"
STRUCTURAL_OPS = ("getitem", "executorch_call_delegate")   # plumbing, not compute


def op_name(target) -> str:
    """`aten.upsample_nearest2d.vec` for an edge op overload."""
    name = getattr(target, "name", None)
    return name().replace("::", ".") if callable(name) else str(target)


def delegation_counts(edge_program) -> dict[str, object]:
    """How many compute ops XNNPACK took, and which were left to portable kernels."""
    from executorch.exir.lowered_backend_module import get_lowered_submodules
    graph = edge_program.exported_program().graph_module
    delegated = sum(sum(1 for n in sub.original_module.graph.nodes if n.op == "call_function")
                    for _, sub, _ in get_lowered_submodules(graph))
    left = Counter(op_name(n.target) for n in graph.graph.nodes
                   if n.op == "call_function" and not any(s in str(n.target) for s in STRUCTURAL_OPS))
    return {"delegated_ops": delegated, "non_delegated_ops": sum(left.values()), "non_delegated": dict(left)}


def quantize_int8(module: ExportGenerator, example) -> torch.nn.Module:
    """PT2E with the XNNPACK quantizer (symmetric, per-channel weights), calibrated on generated inputs
    (CALIBRATION_SAMPLES of them, in batches of the example's size)."""
    from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import (XNNPACKQuantizer,
                                                                          get_symmetric_quantization_config)
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e
    quantizer = XNNPACKQuantizer()
    quantizer.set_global(get_symmetric_quantization_config(is_per_channel=True))
    prepared = prepare_pt2e(torch.export.export(module, example).module(), quantizer)
    with torch.no_grad():
        batch = example[0].shape[0]
        for i in range(math.ceil(CALIBRATION_SAMPLES / batch)):
            prepared(*module.example_inputs(batch=batch, seed=100 + i))
    return convert_pt2e(prepared)


def export_executorch(module: ExportGenerator, out: Path, name: str, quantize: str | None = None,
                      batch: int = 1) -> Artifact:
    """`{name}_xnnpack_{fp32|int8}.pte` for a static batch (an app generates one image at a time;
    the bench also asks for `_b{batch}` files at its batch size)."""
    try:
        from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
        from executorch.exir import to_edge_transform_and_lower
        from executorch.runtime import Runtime
    except ImportError:
        raise ExportError(f"the executorch target needs its extra: {INSTALL_HINT}") from None
    if quantize not in (None, "int8"):
        raise ExportError(f"--quantize {quantize}: use int8 (or leave it out for fp32)")
    example = module.example_inputs(batch=batch)
    graph = quantize_int8(module, example) if quantize else module
    edge = to_edge_transform_and_lower(torch.export.export(graph, example), partitioner=[XnnpackPartitioner()])
    counts = delegation_counts(edge)
    dtype = quantize or "fp32"
    file = out / f"{name}_xnnpack_{dtype}{'' if batch == 1 else f'_b{batch}'}.pte"
    file.write_bytes(edge.to_executorch().buffer)

    method = Runtime.get().load_program(str(file)).load_method("forward")
    calls = math.ceil(PSNR_SAMPLES / batch) if quantize else 1
    samples = [module.example_inputs(batch=batch, seed=1000 + i) for i in range(calls)]
    with torch.no_grad():
        reference = torch.cat([module(*inputs) for inputs in samples])
    got = torch.cat([method.execute(list(inputs))[0] for inputs in samples])
    runtime = "executorch runtime (XNNPACK, CPU)"
    if quantize:
        parity = parity_report(reference, got, float("inf"), runtime)
        parity.update(min_psnr_db=MIN_PSNR_DB_INT8, samples=len(reference),
                      passed=(parity["psnr_db"] or float("inf")) >= MIN_PSNR_DB_INT8)
        parity.pop("tolerance")
    else:
        parity = parity_report(reference, got, TOLERANCE, runtime)
    return Artifact(file.name, "executorch", "int8" if quantize else "float32", parity,
                    {"batch": batch, "backend": "xnnpack", **counts})
