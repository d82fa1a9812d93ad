"""The bounds of the reconstruction settings a user may set, written once.

The ReconJob schema (`models.ReconstructionSpec`), the runner's configuration and the
`recon run` flags all check against these, so the runner never accepts a value the API
would refuse, and a bound changed here changes everywhere.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Limit:
    """An integer setting's inclusive range, with the name a user knows it by."""

    field: str  # the ReconJob field (spec.reconstruction.<field>)
    minimum: int
    maximum: int

    def check(self, value: int) -> int:
        if not self.minimum <= value <= self.maximum:
            raise ValueError(
                f"{self.field} must be between {self.minimum} and {self.maximum}, got {value}"
            )
        return value


GRID_RESOLUTION = Limit("gridResolution", 32, 1024)
ITERATIONS = Limit("iterations", 0, 20_000)
TEXTURE_SIZE = Limit("textureSize", 64, 8192)
SEED = Limit("seed", 0, 2**31 - 1)
