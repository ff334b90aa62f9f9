"""The description of one feature column: its name, family, regions, meaning and unit.

Column names follow ``<family>_<feature>[_<region>][_<param>]`` in snake case, e.g.
``haralick_contrast_nucleus_mean``, ``intensity_mean_cell_gray`` or ``morph_nc_ratio``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from leukoscope.features.choices import Family
from leukoscope.features.regions import Region

_SNAKE = re.compile(r"^[a-z][a-z0-9]*(_[a-z0-9]+)*$")


@dataclass(frozen=True)
class Column:
    """One feature column of ``handcrafted.csv`` and its row in ``columns.csv``.

    Attributes
    ----------
    name : str
        Column name, ``<family>_<feature>[_<region>][_<param>]``.
    family : Family
        The family that computes it.
    regions : tuple of Region
        The regions it is measured on (two for a comparison such as a nucleus/cell ratio).
    description : str
        What it measures, in one sentence a researcher can cite.
    unit : str
        ``px``, ``px^2``, ``degrees``, ``bits``, ``grey level``, ``1`` (dimensionless)...
    """

    name: str
    family: Family
    regions: tuple[Region, ...]
    description: str
    unit: str

    def __post_init__(self) -> None:
        if not _SNAKE.match(self.name):  # pragma: no cover - guards the declarations themselves
            raise ValueError(f"feature column name {self.name!r} is not snake_case")

    @property
    def region(self) -> str:
        """The regions joined with ``+`` (``nucleus``, ``nucleus+cell``...)."""
        return "+".join(r.value for r in self.regions)
