"""``vaekit export RUN --format onnx|torchscript|exported-program``: a run's encoder and decoder as graphs.

:mod:`.graphs` and :mod:`.writers` need torch; :mod:`.onnx_backend` serves the ONNX files with numpy and
onnxruntime alone, so this package imports nothing at import time.
"""
