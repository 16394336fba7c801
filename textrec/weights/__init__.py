"""Weight conversion: PaddlePaddle `.pdparams` <-> flax variables (textrec.weights.paddle)."""
from textrec.weights.paddle import (LoadReport, flax_to_paddle, load_pdparams, param_count,
                                    paddle_to_flax, save_pdparams)

__all__ = ["LoadReport", "flax_to_paddle", "load_pdparams", "param_count", "paddle_to_flax",
           "save_pdparams"]
