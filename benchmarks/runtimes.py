"""The runtimes `lrgan-edge bench` measures, what each needs, and how each runs a batch.

Eager PyTorch runs the model module itself; the others run the artifact the export pipeline
wrote for it (checked against PyTorch at export). A runner is `run(inputs) -> output` on inputs
already where the runtime wants them; CUDA runners synchronise before returning.
"""

from __future__ import annotations

import importlib.util
import platform
from contextlib import nullcontext
from dataclasses import dataclass

import torch

from lrgan_edge.errors import ConfigError


@dataclass(frozen=True)
class Runtime:
    name: str
    device: str                 # "cpu" or "cuda"
    precision: str              # what the arithmetic runs in
    artifact: str | None        # export the runtime loads: "onnx", "pte-fp32", "pte-int8", "coreml"; None = eager
    form: str                   # which module that is (models.FORMS): eager, native (ONNX) or delegable (.pte, Core ML)
    package: str | None = None  # import name that must be installed
    install: str | None = None  # hint when it is not
    note: str = ""


RUNTIMES = {r.name: r for r in [
    Runtime("torch-cpu", "cpu", "fp32", None, "eager", note="eager PyTorch, SDPA attention path"),
    Runtime("cuda-fp32", "cuda", "fp32", None, "eager", note="eager, TF32 off"),
    Runtime("cuda-fp16", "cuda", "fp16", None, "eager", note="eager, autocast fp16"),
    Runtime("cuda-bf16", "cuda", "bf16", None, "eager", note="eager, autocast bf16"),
    Runtime("cuda-bf16-cl", "cuda", "bf16", None, "eager", note="eager, autocast bf16, channels-last"),
    Runtime("cuda-compile", "cuda", "bf16", None, "eager", note="torch.compile (inductor), autocast bf16, channels-last"),
    Runtime("onnxruntime", "cpu", "fp32", "onnx", "native", "onnxruntime", "pip install 'lrgan-edge[onnx]'",
            note="CPU execution provider, all graph optimisations"),
    Runtime("executorch-fp32", "cpu", "fp32", "pte-fp32", "delegable", "executorch", "pip install 'lrgan-edge[executorch]'",
            note="XNNPACK delegate (mobile-CPU stand-in)"),
    Runtime("executorch-int8", "cpu", "int8", "pte-int8", "delegable", "executorch", "pip install 'lrgan-edge[executorch]'",
            note="XNNPACK delegate, PT2E int8"),
    Runtime("coreml", "ane/gpu/cpu", "fp16", "coreml", "delegable", "coremltools", "pip install 'lrgan-edge[coreml]'",
            note="Core ML, compute units ALL (macOS only)"),
]}
DEFAULT_RUNTIMES = tuple(RUNTIMES)     # every runtime; those that cannot run here are listed as skipped


def resolve_runtimes(names: str | list[str]) -> list[Runtime]:
    """`all`, or a comma-separated list of names; an unknown name lists the known ones."""
    if isinstance(names, str):
        names = [n.strip() for n in names.split(",") if n.strip()]
    if not names or names == ["all"]:
        return [RUNTIMES[n] for n in DEFAULT_RUNTIMES]
    unknown = [n for n in names if n not in RUNTIMES]
    if unknown:
        raise ConfigError(f"unknown runtime {unknown[0]!r}; known runtimes: {', '.join(RUNTIMES)}, all")
    return [RUNTIMES[n] for n in dict.fromkeys(names)]


def unavailable_reason(rt: Runtime) -> str | None:
    """Why a runtime cannot run on this machine, or None when it can."""
    if rt.package and importlib.util.find_spec(rt.package) is None:
        return f"{rt.package} is not installed: {rt.install}"
    if rt.device == "cuda" and not torch.cuda.is_available():
        return "no CUDA device on this machine"
    if rt.artifact == "coreml" and platform.system() != "Darwin":
        return f"Core ML prediction needs macOS (this is {platform.system()})"
    return None


def runtime_version(rt: Runtime) -> str:
    if rt.artifact is None:
        return f"torch {torch.__version__}" + (f", CUDA {torch.version.cuda}" if rt.device == "cuda" else "")
    from importlib.metadata import version
    dist = {"onnxruntime": "onnxruntime", "executorch": "executorch", "coremltools": "coremltools"}[rt.package]
    return f"{dist} {version(dist)}"


def set_threads(threads: int) -> None:
    """Pin intra-op threads of every runtime this process may use (inter-op to one)."""
    torch.set_num_threads(threads)
    if importlib.util.find_spec("executorch") is not None:
        from executorch.extension.pybindings import portable_lib
        portable_lib._unsafe_reset_threadpool(threads)


def make_runner(rt: Runtime, module, artifact_path: str | None, input_names: list[str], threads: int):
    """`run(inputs) -> output` for one runtime, and a function that moves inputs where it wants them."""
    if rt.artifact is None:
        return _torch_runner(rt, module)
    if rt.artifact == "onnx":
        import onnxruntime as ort
        options = ort.SessionOptions()
        options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        session = ort.InferenceSession(artifact_path, options, providers=["CPUExecutionProvider"])
        return (lambda x: session.run(None, x)[0]), (lambda xs: {n: t.numpy() for n, t in zip(input_names, xs)})
    if rt.artifact.startswith("pte"):
        from executorch.runtime import Runtime as ETRuntime
        method = ETRuntime.get().load_program(artifact_path).load_method("forward")
        return (lambda x: method.execute(x)[0]), list
    import coremltools as ct                                           # macOS only (unavailable_reason)
    model = ct.models.MLModel(artifact_path, compute_units=ct.ComputeUnit.ALL)
    return (lambda x: model.predict(x)["image"]), (lambda xs: {n: t.numpy() for n, t in zip(input_names, xs)})


def _torch_runner(rt: Runtime, module):
    device = torch.device(rt.device)
    module = module.to(device).eval()
    channels_last = rt.name in ("cuda-bf16-cl", "cuda-compile")
    if channels_last:
        module = module.to(memory_format=torch.channels_last)
    if rt.device == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False   # fp32 means fp32
    forward = torch.compile(module) if rt.name == "cuda-compile" else module
    dtype = {"fp16": torch.float16, "bf16": torch.bfloat16}.get(rt.precision)
    autocast = (lambda: torch.autocast("cuda", dtype=dtype)) if dtype else nullcontext
    sync = torch.cuda.synchronize if rt.device == "cuda" else (lambda: None)

    @torch.inference_mode()
    def run(inputs):
        with autocast():
            out = forward(*inputs)
        sync()
        return out
    return run, (lambda xs: [t.to(device) for t in xs])
