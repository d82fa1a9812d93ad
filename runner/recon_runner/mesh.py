"""The mesh types passed between stages.

Vertices stay in the capture's world frame (the frame of transforms.json) from fusion to
export: no axis conversion anywhere, so the mesh lines up with the cameras.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float32]
IntArray = npt.NDArray[np.int32]
ByteArray = npt.NDArray[np.uint8]
BoolArray = npt.NDArray[np.bool_]


@dataclass
class Mesh:
    """A triangle mesh: vertices [V,3] float32 (metres, world frame), faces [F,3] int32,
    counter-clockwise seen from outside."""

    vertices: FloatArray
    faces: IntArray


@dataclass
class TexturedMesh:
    """A mesh with one UV per vertex (vertices on UV seams are duplicated) and an sRGB
    texture [H,W,3] uint8. UVs follow glTF: (0, 0) is the top-left texel (row 0 of the
    PNG); the OBJ writer flips v, since OBJ puts v = 0 at the bottom.

    `filled` marks the faces no camera observed that `closeHoles` added (all False by
    default, where such faces are removed instead); the export keeps them apart."""

    vertices: FloatArray
    faces: IntArray
    uvs: FloatArray
    texture: ByteArray
    filled: BoolArray = field(default_factory=lambda: np.zeros(0, dtype=bool))

    def __post_init__(self) -> None:
        if len(self.filled) == 0 and len(self.faces):
            self.filled = np.zeros(len(self.faces), dtype=bool)
