#!/usr/bin/python3
"""Reference SSIM/PSNR values for tests/test_metrics.cpp, computed with scikit-image.

Run with the Debian python (apt-get install python3-skimage):  /usr/bin/python3 skimage_reference.py
Every image is built from integer arithmetic only (pixel value = k/255 with integer k), so
the C++ test regenerates it bit for bit; test_metrics.cpp mirrors each generator below.
Images are h x w, row-major: pixel (r, c) is element r*w + c of the flattened vector.
"""
import numpy as np
import skimage
from skimage.metrics import peak_signal_noise_ratio, structural_similarity


class Lcg:
    """state <- (1103515245*state + 12345) mod 2^31; output = state >> 16 (0..32767)."""

    def __init__(self, seed):
        self.state = seed % (1 << 31)

    def next(self):
        self.state = (1103515245 * self.state + 12345) % (1 << 31)
        return self.state >> 16


def pattern_a(h, w):
    """Smooth-ish integer pattern: k = (r*r*3 + c*c*2 + r*c*5 + 7*r + 11*c) mod 256."""
    return np.array([[(r * r * 3 + c * c * 2 + r * c * 5 + 7 * r + 11 * c) % 256
                      for c in range(w)] for r in range(h)], dtype=np.int64)


def pattern_b(h, w):
    """Blocky pattern: k = 40 + 170*((r//4 + c//5) % 2) + (r*c) % 37."""
    return np.array([[40 + 170 * ((r // 4 + c // 5) % 2) + (r * c) % 37
                      for c in range(w)] for r in range(h)], dtype=np.int64)


def add_noise(k, seed, amp):
    """Adds integer noise (lcg % (2*amp+1)) - amp in row-major order, clamped to [0, 255]."""
    g = Lcg(seed)
    out = k.copy()
    h, w = k.shape
    for r in range(h):
        for c in range(w):
            out[r, c] = min(255, max(0, k[r, c] + g.next() % (2 * amp + 1) - amp))
    return out


def lcg_image(h, w, seed):
    """Pure noise image: k = lcg % 256 in row-major order."""
    g = Lcg(seed)
    return np.array([[g.next() % 256 for _ in range(w)] for _ in range(h)], dtype=np.int64)


def contrast(k):
    """k -> (3*k)//4 + 32."""
    return (3 * k) // 4 + 32


CASES = [
    # name, h, w, image x, image ref
    ("a28_noisy", 28, 28, lambda h, w: add_noise(pattern_a(h, w), 1, 20), pattern_a),
    ("a28_vs_b28", 28, 28, pattern_b, pattern_a),
    ("b20x31_noisy", 20, 31, lambda h, w: add_noise(pattern_b(h, w), 7, 50), pattern_b),
    ("b20x31_contrast", 20, 31, lambda h, w: contrast(pattern_b(h, w)), pattern_b),
    ("lcg7x9", 7, 9, lambda h, w: lcg_image(h, w, 3), lambda h, w: lcg_image(h, w, 4)),
]


def main():
    print(f"// scikit-image {skimage.__version__}, numpy {np.__version__}")
    for name, h, w, fx, fr in CASES:
        x = fx(h, w).astype(np.float64) / 255.0
        ref = fr(h, w).astype(np.float64) / 255.0
        p = peak_signal_noise_ratio(ref, x, data_range=1.0)
        s = structural_similarity(x, ref, data_range=1.0)
        s255 = structural_similarity(x * 255.0, ref * 255.0, data_range=255.0)
        print(f'{{"{name}", {h}, {w}, {p!r}, {s!r}, {s255!r}}},')


if __name__ == "__main__":
    main()
