"""Pipelines over whole images: the General OCR pipeline (detection, orientation,
recognition) and its pieces."""
