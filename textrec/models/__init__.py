"""Model zoo: the networks and their registry (textrec.models.registry; `get_model(name)`
imports the module of a built-in model on first use).

Contract shared by all recognizers (textrec/models/recognizer.py):
  * `get_model(name)(num_classes=..., deploy=False, dtype=jnp.float32, ...)` returns a
    flax.linen Module whose submodule/param names mirror PaddleOCR's state_dict names
    (`backbone.blocks2.0.dw_conv.conv_kxk.0.conv.weight` ->
    `backbone/blocks2_0/dw_conv/conv_kxk_0/conv/kernel`), see textrec/weights/paddle.py.
  * `module.apply(variables, x, train=False)` with x f32[B, H, W, 3] (NHWC, normalised BGR)
    returns a dict: "ctc_logits" f32[B, T, C] always; in training (train=True and
    `nrtr_targets` given) also "nrtr_logits" f32[B, L, C_nrtr].
  * variables = {"params": ..., "batch_stats": ...}.

Detectors and orientation classifiers are registered apart (registry kinds "det", "cls"),
so recognizer code paths never list them: `get_model("PP-OCRv4_mobile_det", kind="det")`
(textrec/models/detector.py: x [B, H, W, 3] -> {"maps": [B, H, W, 1]}) and
`get_model("ch_ppocr_mobile_v2.0_cls", kind="cls")` (textrec/models/classifier.py:
x [B, 48, 192, 3] -> probabilities [B, 2] over ('0', '180')); PaddleX's PP-LCNet
classifiers `PP-LCNet_x1_0_textline_ori` (x [B, 80, 160, 3] -> [B, 2]) and
`PP-LCNet_x1_0_doc_ori` (x [B, 224, 224, 3] -> [B, 4] over 0/90/180/270 degrees) are kind "cls"
too (textrec/models/pplcnet.py).
"""
