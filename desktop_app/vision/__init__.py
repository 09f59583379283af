"""Headless vision core: detection, alignment, embedding, quality, tracking (ONNX Runtime, no Qt)."""
