"""The pyradiomics side of bench/features.py; runs in the pyradiomics environment.

Usage (called by bench/features.py)::

    bench/.venv-radiomics/bin/python bench/radiomics_reference.py FOLDER --jobs 2

FOLDER holds ``<id>_gray.png`` (the grey image leukoscope measures) and ``<id>_labels.png``
(0 background, 1 cytoplasm, 2 nucleus). Every image goes through pyradiomics' firstorder,
GLCM and shape2D classes on the nucleus, the cytoplasm and the whole cell, with 64 grey
levels (leukoscope's default), in ``--jobs`` processes. Prints one JSON line:
``{"images": N, "seconds": S, "features_per_image": F, "cpu_per_image": C, "pyradiomics": V}``
(C: mean CPU seconds per image in the workers).
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import radiomics
import SimpleITK as sitk
from radiomics import featureextractor

REGIONS = {"nucleus": (2,), "cytoplasm": (1,), "cell": (1, 2)}
_EXTRACTOR = None


def _extractor() -> featureextractor.RadiomicsFeatureExtractor:
    global _EXTRACTOR
    if _EXTRACTOR is None:
        logging.getLogger("radiomics").setLevel(logging.ERROR)
        _EXTRACTOR = featureextractor.RadiomicsFeatureExtractor(force2D=True, binCount=64, label=1)
        _EXTRACTOR.disableAllFeatures()
        for name in ("firstorder", "glcm", "shape2D"):
            _EXTRACTOR.enableFeatureClassByName(name)
    return _EXTRACTOR


def measure(stem: str) -> tuple[int, float]:
    """pyradiomics features of the three regions of one image: how many, and the CPU seconds."""
    start = time.process_time()
    gray = sitk.ReadImage(f"{stem}_gray.png")
    labels = sitk.GetArrayFromImage(sitk.ReadImage(f"{stem}_labels.png"))
    count = 0
    for values in REGIONS.values():
        mask = sitk.GetImageFromArray(np.isin(labels, values).astype(np.uint8))
        mask.CopyInformation(gray)
        result = _extractor().execute(gray, mask)
        count += sum(1 for key in result if not key.startswith("diagnostics_"))
    return count, time.process_time() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args()
    stems = sorted(str(p)[: -len("_gray.png")] for p in args.folder.glob("*_gray.png"))
    with ProcessPoolExecutor(args.jobs) as pool:
        list(pool.map(measure, stems[: args.jobs]))  # warm-up: imports and extractor in every worker
        start = time.perf_counter()
        results = list(pool.map(measure, stems))
        seconds = time.perf_counter() - start
    print(json.dumps({"images": len(stems), "seconds": seconds, "features_per_image": results[0][0],
                      "cpu_per_image": sum(cpu for _, cpu in results) / len(stems),
                      "pyradiomics": radiomics.__version__}))


if __name__ == "__main__":
    main()
