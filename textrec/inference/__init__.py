"""Inference: preprocess, CTC decode, inputs, results, create_model's predictor, the onnxruntime backend."""
