"""Thumbnail set (256 + 1024 px WebP) of 24 MP images: filepipe's renderer against pyvips.

Both engines run the same algorithm with the same settings, read from ``thumbnails.render``: one
decode, with shrink-on-load for JPEG at the same factor (Pillow's ``draft()``; libvips' ``shrink``
load option, picked the same way); Lanczos-3 resampling after a box pre-reduction with the same
reducing gap (Pillow ``reducing_gap``, libvips ``resize(gap=...)``); the 256 px image resampled from the
1024 px one; EXIF orientation applied; no metadata kept; lossy WebP at the same quality and
method/effort. (pyvips' ``thumbnail()`` does the same steps but has no gap option: it always uses 2.)
The renderer also decodes a JPEG at 3/8 where that covers the target and 1/2 would be the next scale
(libvips' shrink has no 3/8); for these 6000x4000 inputs both engines decode at 1/4.
Every run is a fresh process; its time covers the render alone (after a warm-up on a small image of the
same format, so library start-up is not counted) and its peak RSS is that whole process's.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import time
from pathlib import Path
from typing import Any

from filepipe.bench import BenchContext, Row, megabytes, own_peak_rss_bytes, run_child, section

MODULE = "filepipe.bench.thumbnails"
SIZES = (256, 1024)
WIDTH, HEIGHT = 6000, 4000
JPEG_TIME_TARGET = 1.0
PNG_TIME_TARGET = 1.3
JPEG_RSS_TARGET = 64 * 1024 * 1024


def make_photo(width: int, height: int, seed: int = 42) -> Any:
    """A photo-like RGB image: smooth gradients, hard-edged shapes and sensor-like grain."""
    from PIL import Image, ImageChops, ImageDraw

    red = Image.linear_gradient("L").resize((width, height))
    green = Image.radial_gradient("L").resize((width, height))
    blue = Image.linear_gradient("L").rotate(90).resize((width, height))
    photo = Image.merge("RGB", (red, green, blue))
    draw = ImageDraw.Draw(photo)
    rng = random.Random(seed)
    for _ in range(150):
        x, y, extent = rng.randrange(width), rng.randrange(height), rng.randrange(50, width // 8)
        colour = (rng.randrange(256), rng.randrange(256), rng.randrange(256))
        box = (x, y, x + extent, y + int(extent * rng.uniform(0.3, 1.5)))
        (draw.ellipse if rng.random() < 0.5 else draw.rectangle)(box, fill=colour)
    # Grain at half resolution, upscaled: noise as a camera gives it, not per-pixel white noise.
    grain = Image.effect_noise((width // 2, height // 2), 10).resize(
        (width, height), Image.Resampling.BICUBIC
    )
    return Image.merge("RGB", [ImageChops.add(band, grain, 1.0, -128) for band in photo.split()])


def make_graphic(width: int, height: int, seed: int = 7) -> Any:
    """What PNG uploads mostly are (screenshots, diagrams): gradients, flat panels, shapes and text."""
    from PIL import Image, ImageDraw

    background = Image.linear_gradient("L").resize((width, height))
    graphic = Image.merge("RGB", (background, background.rotate(180), Image.new("L", (width, height), 200)))
    draw = ImageDraw.Draw(graphic)
    rng = random.Random(seed)
    for _ in range(300):
        x, y, extent = rng.randrange(width), rng.randrange(height), rng.randrange(50, width // 5)
        colour = (rng.randrange(256), rng.randrange(256), rng.randrange(256))
        box = (x, y, x + extent, y + int(extent * rng.uniform(0.3, 1.5)))
        (draw.ellipse if rng.random() < 0.5 else draw.rectangle)(box, fill=colour)
    for _ in range(3000):
        position = (rng.randrange(width), rng.randrange(height))
        draw.text(position, f"filepipe thumbnail {rng.randrange(10**6)}", fill=(0, 0, 0))
    return graphic


def make_inputs(workdir: Path) -> dict[str, Path]:
    """A 24 MP photo as JPEG (quality 90) and PNG, a 24 MP graphic as PNG, small warm-up images."""
    paths = {
        "jpeg": workdir / "photo-24mp.jpg",
        "png": workdir / "graphic-24mp.png",
        "photo-png": workdir / "photo-24mp.png",
        "jpeg-warmup": workdir / "warmup.jpg",
        "png-warmup": workdir / "warmup.png",
        "photo-png-warmup": workdir / "warmup.png",
    }
    if all(path.exists() for path in paths.values()):
        return paths
    photo = make_photo(WIDTH, HEIGHT)
    photo.save(paths["jpeg"], "JPEG", quality=90)
    photo.save(paths["photo-png"], "PNG", compress_level=6)
    small = photo.resize((320, 240))
    small.save(paths["jpeg-warmup"], "JPEG", quality=90)
    small.save(paths["png-warmup"], "PNG")
    make_graphic(WIDTH, HEIGHT).save(paths["png"], "PNG", compress_level=6)
    return paths


# ----------------------------------------------------------------- child side (a fresh process per run)


def _ours() -> Any:
    from thumbnails.render import render_thumbnails  # Pillow and the renderer, nothing else

    def render(path: str) -> list[tuple[int, int, int]]:
        with open(path, "rb") as source:
            thumbnails = render_thumbnails(source, SIZES, 50_000_000)
        return [(t.width, t.height, len(t.data)) for t in thumbnails]

    return render


def _fit(width: int, height: int, box: int) -> tuple[int, int]:
    longest = max(width, height)
    if longest <= box:
        return width, height
    return max(1, round(width * box / longest)), max(1, round(height * box / longest))


def _pyvips(gap: float, quality: int, effort: int) -> Any:
    import pyvips

    def render(path: str) -> list[tuple[int, int, int]]:
        header = pyvips.Image.new_from_file(path)  # reads the header only
        width, height = header.width, header.height
        options: dict[str, Any] = {"access": "sequential"}
        if header.get("vips-loader").startswith("jpegload"):
            # The DCT scale Pillow's draft() picks: the largest of 8, 4, 2 that still covers the target.
            target_width, target_height = _fit(width, height, SIZES[1])
            room = min(width // target_width, height // target_height)
            options["shrink"] = next((factor for factor in (8, 4, 2) if room >= factor), 1)
        orientation = header.get("orientation") if header.get_typeof("orientation") else 1
        shown = (height, width) if orientation in (5, 6, 7, 8) else (width, height)
        image = pyvips.Image.new_from_file(path, **options).autorot()
        results = []
        for size in sorted(SIZES, reverse=True):
            target_width, target_height = _fit(*shown, size)
            image = image.resize(
                target_width / image.width, vscale=target_height / image.height, kernel="lanczos3", gap=gap
            ).copy_memory()  # keep the pixels: the next size is made from them, as ours does
            data = image.webpsave_buffer(Q=quality, effort=effort, keep="none")
            results.append((image.width, image.height, len(data)))
        return results[::-1]

    return render


def child(engine: str, warmup: str, path: str) -> None:
    if engine == "ours":
        render = _ours()
    else:
        from thumbnails.quality import REDUCING_GAP, WEBP_METHOD, WEBP_QUALITY  # no Pillow import

        render = _pyvips(REDUCING_GAP, WEBP_QUALITY, WEBP_METHOD)
    render(warmup)
    started, cpu_started = time.perf_counter(), time.process_time()
    thumbnails = render(path)
    elapsed_ms = (time.perf_counter() - started) * 1000
    cpu_ms = (time.process_time() - cpu_started) * 1000  # all threads of the process
    print(
        json.dumps(
            {
                "ms": elapsed_ms,
                "cpu_ms": cpu_ms,
                "thumbnails": thumbnails,
                "peak_rss_bytes": own_peak_rss_bytes(),
            }
        )
    )


# ----------------------------------------------------------------- parent side

# pyvips with its default thread pool is the reference. The renderer uses a second thread too, for the
# work Pillow does without the GIL (half of a large resize; encoding one size while resampling the
# next). The CPU column shows each engine's total work, independent of threads and of other load.
ENGINES: dict[str, tuple[str, dict[str, str]]] = {"ours": ("ours", {}), "pyvips": ("pyvips", {})}
REFERENCE = "pyvips"


def _pyvips_available() -> bool:
    try:
        run_child(MODULE, ["--probe-pyvips"])
    except RuntimeError:
        return False
    return True


def _measure(runs: int, inputs: dict[str, Path], key: str, engines: list[str]) -> dict[str, Any]:
    times: dict[str, list[float]] = {engine: [] for engine in engines}
    cpu: dict[str, list[float]] = {engine: [] for engine in engines}
    peaks: dict[str, list[int]] = {engine: [] for engine in engines}
    shapes: dict[str, list[list[int]]] = {}
    for _ in range(runs):
        for engine in engines:  # interleaved, so other load on the machine hits every engine alike
            kind, environment = ENGINES[engine]
            arguments = ["--child", kind, str(inputs[f"{key}-warmup"]), str(inputs[key])]
            measured = run_child(MODULE, arguments, environment)
            times[engine].append(measured["ms"])
            cpu[engine].append(measured["cpu_ms"])
            peaks[engine].append(measured["peak_rss_bytes"])
            shapes[engine] = [[width, height] for width, height, _ in measured["thumbnails"]]
    if len({json.dumps(shape) for shape in shapes.values()}) != 1:
        raise RuntimeError(f"{key}: the engines made different thumbnail sizes: {shapes}")
    return {
        "median_ms": {engine: statistics.median(values) for engine, values in times.items()},
        "median_cpu_ms": {engine: statistics.median(values) for engine, values in cpu.items()},
        "peak_rss": {engine: max(values) for engine, values in peaks.items()},
    }


@section("thumbnails", "256+1024 px WebP set of 24 MP JPEG and PNG images, ours vs pyvips, a process per run")
def run(context: BenchContext) -> list[Row]:
    inputs = make_inputs(context.workdir)
    engines = list(ENGINES) if _pyvips_available() else ["ours"]
    rows: list[Row] = []
    cases = (
        ("JPEG photo", "jpeg", JPEG_TIME_TARGET, context.runs),
        ("PNG graphic", "png", PNG_TIME_TARGET, context.runs),
        # The worst case for Pillow: its PNG unfiltering is scalar C, about twice libspng's time on
        # the Paeth-filtered rows of a noisy photo. Reported, fewer runs, no target.
        ("PNG photo", "photo-png", None, min(context.runs, 3)),
    )
    for label, key, time_target, runs in cases:
        measured = _measure(runs, inputs, key, engines)
        median_ms, median_cpu, peak_rss = (
            measured["median_ms"],
            measured["median_cpu_ms"],
            measured["peak_rss"],
        )
        case = f"{label} {WIDTH}x{HEIGHT}, {megabytes(inputs[key].stat().st_size)}"
        ours_ms = median_ms["ours"]
        if REFERENCE not in median_ms:
            rows.append(
                Row("thumbnails", f"{case}: median time", f"{ours_ms:.0f} ms", "no pyvips", "-", "-", None)
            )
        for engine in engines[1:]:
            ratio = ours_ms / median_ms[engine]
            is_target = engine == REFERENCE and time_target is not None
            rows.append(
                Row(
                    "thumbnails",
                    f"{case}: median time of {runs} vs {engine}",
                    f"{ours_ms:.0f} ms (CPU {median_cpu['ours']:.0f} ms)",
                    f"{median_ms[engine]:.0f} ms (CPU {median_cpu[engine]:.0f} ms)",
                    f"{ratio:.2f}x",
                    f"<= {time_target:.1f}x" if is_target and time_target is not None else "-",
                    ratio <= time_target if is_target and time_target is not None else None,
                )
            )
        reference_peak = ", ".join(f"{megabytes(peak_rss[engine])} ({engine})" for engine in engines[1:])
        rows.append(
            Row(
                "thumbnails",
                f"{case}: peak RSS of the process",
                megabytes(peak_rss["ours"]),
                reference_peak or "-",
                "-",
                f"<= {megabytes(JPEG_RSS_TARGET)}" if key == "jpeg" else "-",
                peak_rss["ours"] <= JPEG_RSS_TARGET if key == "jpeg" else None,
            )
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description="one measured thumbnail render (bench child process)")
    parser.add_argument("--child", nargs=3, metavar=("ENGINE", "WARMUP", "PATH"))
    parser.add_argument("--probe-pyvips", action="store_true")
    args = parser.parse_args()
    if args.probe_pyvips:
        import pyvips

        print(json.dumps({"libvips": f"{pyvips.version(0)}.{pyvips.version(1)}.{pyvips.version(2)}"}))
    elif args.child:
        child(*args.child)


if __name__ == "__main__":
    main()
