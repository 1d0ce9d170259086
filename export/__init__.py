"""Export of the trained generator to ONNX, Core ML and ExecuTorch (installed as lrgan_edge.export)."""
