"""Throughput of the whole ``segment`` step on 450x450 C-NMC-sized cells.

Generates the synthetic demo set (C-NMC layout, 450x450 BMP cells on black) unless ``--data``
names a dataset, then times :func:`leukoscope.pipeline.stages.segment.run_segment` end to end:
reading each image, segmenting it, writing its mask and overlay PNGs, the table and the
montage, with ``--jobs`` workers, twice: from cold (worker start-up and imports included) and
then with the workers already started (joblib keeps its loky workers between calls), the
steady rate a long run such as the 15,135 C-NMC cells sees. As a reference measured in the
same run it times bare decoding of the same files (``read_image``, one process), and prints
the ratio, which is steadier than images/s on a shared machine. It also runs the step with one
job in this process and reports its CPU time per image: on a machine shared with other work the
CPU time, unlike the wall clock, does not count the time spent waiting for a core.

Usage::

    .venv/bin/python bench/segmentation.py [--cells 1200] [--jobs 2] [--data FOLDER]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from leukoscope.pipeline.config import Config
from leukoscope.pipeline.datasets import load_dataset
from leukoscope.pipeline.demo import generate_demo
from leukoscope.pipeline.imageio import read_image
from leukoscope.pipeline.rundir import RunDir
from leukoscope.pipeline.stages.segment import run_segment


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", type=int, default=1200, help="demo cells to generate (default 1200)")
    parser.add_argument("--jobs", type=int, default=2, help="segment workers (default 2)")
    parser.add_argument("--data", type=Path, help="an existing dataset instead of the demo")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="leukoscope-bench-") as tmp:
        data = args.data
        if data is None:
            data = Path(tmp) / "demo"
            generate_demo(data, subjects=12, cells=args.cells, seed=0, jobs=args.jobs, quiet=True)
        samples = load_dataset(data).samples
        paths = list(samples["path"])
        shape = read_image(paths[0]).shape

        wall, cpu = time.perf_counter(), time.process_time()
        for path in paths:
            read_image(path)
        decode_wall = (time.perf_counter() - wall) / len(paths)
        decode_cpu = (time.process_time() - cpu) / len(paths)

        def segment(jobs: int, name: str) -> tuple[float, float]:
            config = Config().with_overrides({"run.jobs": jobs, "run.quiet": True})
            wall, cpu = time.perf_counter(), time.process_time()
            run_segment(config, RunDir(Path(tmp) / name), samples)
            return (time.perf_counter() - wall) / len(paths), (time.process_time() - cpu) / len(paths)

        _, segment_cpu = segment(1, "one")  # in this process: its CPU time is the work per image
        cold_wall, _ = segment(args.jobs, "cold")
        segment_wall, _ = segment(args.jobs, "parallel")  # the same workers, started and warm

    print(f"{len(paths)} images of {shape[0]}x{shape[1]}")
    print(f"reference, bare decode (read_image, 1 process): {1 / decode_wall:7.1f} images/s, "
          f"{decode_cpu * 1e3:.2f} ms CPU per image")
    print(f"segment step, --jobs {args.jobs} (read, segment, write mask + overlay, table, montage): "
          f"{1 / segment_wall:7.1f} images/s (workers started; {1 / cold_wall:.1f} images/s from cold)")
    print(f"ratio segment (--jobs {args.jobs}) / decode (1 process), wall clock: {decode_wall / segment_wall:.3f}")
    print(f"segment step, --jobs 1: {segment_cpu * 1e3:.2f} ms CPU per image = {segment_cpu / decode_cpu:.1f} decodes; "
          f"{args.jobs} idle cores would give about {args.jobs / segment_cpu:.0f} images/s")


if __name__ == "__main__":
    main()
