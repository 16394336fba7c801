"""Weights in: the official ONNX files, PaddleOCR .pdparams, Paddle inference directories, and
one loader (textrec.weights.loader) that tells them apart."""
