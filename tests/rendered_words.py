"""Word images drawn at test time with OpenCV's Hershey fonts: text crops for the comparisons
with onnxruntime that need no dataset (a fresh clone has no IC15)."""
from __future__ import annotations

import cv2
import numpy as np

WORDS = ("HOTEL", "exit", "Coffee", "2024", "PARKING", "sale", "Station", "OPEN", "toilet",
         "Bank", "No.17", "SMOKING", "street", "Lobby", "CAFE", "push", "Level 3", "MENU",
         "taxi", "Welcome", "B2", "Pharmacy", "gate", "STOP", "Ticket", "100%", "Kiosk",
         "north", "FLOOR", "market", "Exit A", "books")
FONTS = (cv2.FONT_HERSHEY_SIMPLEX, cv2.FONT_HERSHEY_DUPLEX, cv2.FONT_HERSHEY_COMPLEX,
         cv2.FONT_HERSHEY_TRIPLEX, cv2.FONT_HERSHEY_PLAIN)


def images(n: int = len(WORDS)) -> list[tuple[np.ndarray, str]]:
  """[(BGR uint8 [h, w, 3], text)]: deterministic; fonts, sizes, colours and noise vary."""
  rng = np.random.default_rng(0)
  out = []
  for i, word in enumerate(WORDS[:n]):
    font, scale, thick = FONTS[i % len(FONTS)], 0.8 + 0.3 * (i % 3), 1 + i % 2
    if font == cv2.FONT_HERSHEY_PLAIN:
      scale *= 2
    (w, h), base = cv2.getTextSize(word, font, scale, thick)
    pad = 4 + i % 5
    bg = rng.integers(150, 256, 3)
    fg = rng.integers(0, 90, 3)
    if i % 4 == 3:  # light text on dark
      bg, fg = 255 - bg, 255 - fg
    img = np.empty((h + base + 2 * pad, w + 2 * pad, 3), np.uint8)
    img[:] = bg
    cv2.putText(img, word, (pad, pad + h), font, scale, tuple(int(c) for c in fg), thick,
                cv2.LINE_AA)
    noisy = img.astype(np.float32) + rng.normal(0, 4, img.shape)
    out.append((np.clip(noisy, 0, 255).astype(np.uint8), word))
  return out
