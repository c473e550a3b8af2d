"""A frame's number, burnt into its pixels as a strip of black and white blocks, so that the
capture time of any frame can be read back after encoding, scaling and packaging.

The publisher overlays ``BITS`` blocks of ``BLOCK`` px (at ``WIDTH``×``HEIGHT``) in the top
left corner: block ``i`` is white when bit ``i`` of the frame number is set. The strip is a
tiny ``geq`` source (``BITS × BLOCK`` by ``BLOCK`` pixels), so it costs nothing beside the
encode. A decoded frame, scaled back to ``WIDTH``×``HEIGHT``, is read by sampling the middle
of each block."""

from __future__ import annotations

WIDTH, HEIGHT = 1280, 720
BITS = 20  # about 9.7 hours of frames at 30 fps
BLOCK = 16
STRIP_W = BITS * BLOCK
_SAMPLE = 4  # the middle SAMPLE×SAMPLE pixels of each block


def overlay_filter(fps: int) -> str:
    """A filter_complex that draws the code onto input ``[0:v]`` and names the result ``[v]``."""
    code = (
        f"nullsrc=s={STRIP_W}x{BLOCK}:r={fps},format=gray,"
        f"geq=lum='255*mod(floor(N/pow(2\\,floor(X/{BLOCK})))\\,2)'"
    )
    return f"{code}[code];[0:v][code]overlay=0:0:shortest=1[v]"


def crop_filter() -> str:
    """The filter that turns a decoded frame of any size into the strip, in gray bytes."""
    return f"scale={WIDTH}:{HEIGHT},crop={STRIP_W}:{BLOCK}:0:0,format=gray"


def read_code(strip: bytes) -> int:
    """The frame number in a ``STRIP_W``×``BLOCK`` gray strip."""
    if len(strip) != STRIP_W * BLOCK:
        raise ValueError(f"expected {STRIP_W * BLOCK} bytes, got {len(strip)}")
    value = 0
    start = (BLOCK - _SAMPLE) // 2
    for bit in range(BITS):
        x0 = bit * BLOCK + start
        samples = [
            strip[y * STRIP_W + x]
            for y in range(start, start + _SAMPLE)
            for x in range(x0, x0 + _SAMPLE)
        ]
        if sum(samples) / len(samples) > 127:
            value |= 1 << bit
    return value
