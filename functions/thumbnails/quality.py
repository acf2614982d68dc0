"""Resampling and WebP settings of the thumbnail set, kept apart so tools can read them without Pillow."""

from __future__ import annotations

# libwebp's default quality for lossy photos (Pillow's too). Method 0 rather than the default 4: for a
# 1024 px photo at this quality it encodes in about a quarter of the time with the same PSNR (within
# 0.2 dB), for a file ~5% larger; the encode is a third of a JPEG's whole render at method 4.
WEBP_QUALITY = 80
WEBP_METHOD = 0
# The resize first box-reduces by the largest whole factor that keeps the image at least REDUCING_GAP
# times the target, then resamples the remainder with Lanczos-3. A gap of 1 takes a 6000 px PNG 5x by
# box, then Lanczos 1200 -> 1024: ~43 dB PSNR from a plain Lanczos over all 24 MP (invisible in a
# thumbnail) at a third of the cost of a gap of 2. JPEGs come out of draft() within 2x of the target,
# so for them the gap changes nothing.
REDUCING_GAP = 1.0
