"""Export to serving formats (ONNX, SavedModel) with an inference.yml."""
