"""ExecuTorch: XNNPACK-delegated `.pte` (fp32), checked through the ExecuTorch Python runtime."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import torch

from lrgan_edge.errors import ExportError

from .common import Artifact, ExportGenerator, example_inputs, parity_report

TOLERANCE = 1e-4
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


def export_executorch(module: ExportGenerator, out: Path, name: str) -> Artifact:
    try:
        from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
        from executorch.exir import to_edge_transform_and_lower
        from executorch.runtime import Runtime
    except ImportError:
        raise ExportError(f"the executorch target needs its extra: {INSTALL_HINT}") from None
    z, meta = example_inputs(module, batch=1)
    program = torch.export.export(module, (z, meta))
    edge = to_edge_transform_and_lower(program, partitioner=[XnnpackPartitioner()])
    counts = delegation_counts(edge)
    file = out / f"{name}_xnnpack_fp32.pte"
    file.write_bytes(edge.to_executorch().buffer)

    z, meta = example_inputs(module, batch=1, seed=1)
    with torch.no_grad():
        reference = module(z, meta)
    method = Runtime.get().load_program(str(file)).load_method("forward")
    got = method.execute([z, meta])[0]
    parity = parity_report(reference, got, TOLERANCE, "executorch runtime (XNNPACK, CPU)")
    return Artifact(file.name, "executorch", "float32", parity, {"batch": 1, "backend": "xnnpack", **counts})
