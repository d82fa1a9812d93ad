"""Accuracy of a reconstruction against the true object, in the figures the benchmark reports.

- Chamfer-L1: the mean of the two directions' mean point-to-surface distances, on `samples`
  uniform surface samples each way; also given as a fraction of the true bounding-box
  diagonal, which makes objects of different sizes comparable.
- F-score at 1% of that diagonal: harmonic mean of precision (reconstruction samples within
  the threshold of the true surface) and recall (true samples within it of the
  reconstruction).
- Normal consistency: mean |cos| between each sample's face normal and the normal of the
  closest face on the other surface, both ways (ripple lowers it even when distances are small).
- Colour PSNR: the true colour at each true surface sample against the reconstruction's colour
  at its closest surface point, both sRGB in [0, 1]. A textured mesh is read the way a glTF
  viewer shows it: base colour factor 1, the texture's sRGB values, bilinear filtering,
  repeat wrapping, uv (0, 0) at the top-left texel.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np
import numpy.typing as npt

from recon_runner.mesh import Mesh, TexturedMesh
from recon_runner.surface_query import F64, I64, SurfaceIndex, sample_surface

SurfaceColour = Callable[[I64, F64], F64]  # (faces [N], barycentrics [N,3]) -> sRGB [N,3]
TrueColour = Callable[[npt.NDArray[np.floating]], npt.NDArray[np.float64]]

DEFAULT_SAMPLES = 100_000
FSCORE_THRESHOLD_RATIO = 0.01


@dataclass(frozen=True)
class Accuracy:
    chamfer_l1: float  # metres
    chamfer_l1_ratio: float  # of the true bounding-box diagonal
    fscore: float
    precision: float
    recall: float
    threshold: float  # metres: FSCORE_THRESHOLD_RATIO of the diagonal
    normal_consistency: float
    diagonal: float  # metres
    colour_psnr: float | None = None  # dB; None when no colour was compared

    def as_dict(self) -> dict[str, float | None]:
        return asdict(self)


def fscore(precision: float, recall: float) -> float:
    total = precision + recall
    return 0.0 if total == 0 else 2.0 * precision * recall / total


def psnr(a: npt.ArrayLike, b: npt.ArrayLike) -> float:
    """PSNR in dB of values in [0, 1]; infinite when they are identical."""
    mse = float(np.mean((np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)) ** 2))
    return math.inf if mse == 0 else 10.0 * math.log10(1.0 / mse)


def bounding_diagonal(vertices: npt.ArrayLike) -> float:
    v = np.asarray(vertices, dtype=np.float64)
    return float(np.linalg.norm(v.max(axis=0) - v.min(axis=0)))


def sample_texture_srgb(texture: npt.NDArray[np.uint8], uv: F64) -> F64:
    """Bilinear, repeat-wrapped texture lookup (glTF's default sampler), sRGB in [0, 1]."""
    tex = np.asarray(texture, dtype=np.float64)[..., :3] / 255.0
    h, w = tex.shape[:2]
    x = uv[:, 0] * w - 0.5
    y = uv[:, 1] * h - 0.5
    x0, y0 = np.floor(x), np.floor(y)
    fx, fy = (x - x0)[:, None], (y - y0)[:, None]
    xi0, yi0 = x0.astype(np.int64) % w, y0.astype(np.int64) % h
    xi1, yi1 = (xi0 + 1) % w, (yi0 + 1) % h
    top = tex[yi0, xi0] * (1 - fx) + tex[yi0, xi1] * fx
    bottom = tex[yi1, xi0] * (1 - fx) + tex[yi1, xi1] * fx
    return np.asarray(top * (1 - fy) + bottom * fy, dtype=np.float64)


def textured_colour(mesh: TexturedMesh) -> SurfaceColour:
    """The colour a glTF viewer shows on a textured mesh's surface."""
    uvs = np.asarray(mesh.uvs, dtype=np.float64)
    faces = np.asarray(mesh.faces, dtype=np.int64)

    def colour(face: I64, bary: F64) -> F64:
        uv = np.einsum("nk,nkd->nd", bary, uvs[faces[face]])
        return sample_texture_srgb(mesh.texture, uv)

    return colour


def vertex_colour(faces: npt.ArrayLike, colours: npt.ArrayLike) -> SurfaceColour:
    """Per-vertex colours (uint8, or floats in [0, 1]) interpolated across faces, as a
    viewer shades a vertex-coloured mesh (the Open3D baseline's output)."""
    tri = np.asarray(faces, dtype=np.int64)
    values = np.asarray(colours)
    rgb = values[:, :3] / 255.0 if values.dtype == np.uint8 else values[:, :3].astype(np.float64)

    def colour(face: I64, bary: F64) -> F64:
        return np.asarray(np.einsum("nk,nkd->nd", bary, rgb[tri[face]]), dtype=np.float64)

    return colour


def evaluate(
    true_mesh: Mesh,
    recon_vertices: npt.ArrayLike,
    recon_faces: npt.ArrayLike,
    true_colour: TrueColour | None = None,
    recon_colour: SurfaceColour | None = None,
    samples: int = DEFAULT_SAMPLES,
    seed: int = 0,
) -> Accuracy:
    """All figures of a reconstruction against the true mesh (and colours, when both the
    true colour and the reconstruction's colour are given)."""
    rng = np.random.default_rng(seed)
    recon_v = np.asarray(recon_vertices, dtype=np.float64)
    recon_f = np.asarray(recon_faces, dtype=np.int64)
    true_index = SurfaceIndex(true_mesh.vertices, true_mesh.faces, seed=seed)
    recon_index = SurfaceIndex(recon_v, recon_f, seed=seed + 1)
    true_samples = sample_surface(true_mesh.vertices, true_mesh.faces, samples, rng)
    recon_samples = sample_surface(recon_v, recon_f, samples, rng)

    on_recon = recon_index.closest(true_samples.points)
    on_true = true_index.closest(recon_samples.points)
    to_recon = np.linalg.norm(true_samples.points - on_recon.points, axis=1)
    to_true = np.linalg.norm(recon_samples.points - on_true.points, axis=1)

    diagonal = bounding_diagonal(true_mesh.vertices)
    threshold = FSCORE_THRESHOLD_RATIO * diagonal
    precision = float(np.mean(to_true < threshold))
    recall = float(np.mean(to_recon < threshold))
    chamfer = 0.5 * (float(to_recon.mean()) + float(to_true.mean()))
    consistency = 0.5 * (
        float(np.abs(np.einsum("ij,ij->i", true_samples.normals, on_recon.normals)).mean())
        + float(np.abs(np.einsum("ij,ij->i", recon_samples.normals, on_true.normals)).mean())
    )
    colour_psnr = None
    if true_colour is not None and recon_colour is not None:
        expected = np.clip(true_colour(true_samples.points), 0.0, 1.0)
        colour_psnr = psnr(expected, recon_colour(on_recon.faces, on_recon.bary))
    return Accuracy(
        chamfer_l1=chamfer,
        chamfer_l1_ratio=chamfer / diagonal,
        fscore=fscore(precision, recall),
        precision=precision,
        recall=recall,
        threshold=threshold,
        normal_consistency=consistency,
        diagonal=diagonal,
        colour_psnr=colour_psnr,
    )


def evaluate_textured(
    true_mesh: Mesh,
    true_colour: TrueColour,
    recon: TexturedMesh,
    samples: int = DEFAULT_SAMPLES,
    seed: int = 0,
) -> Accuracy:
    """`evaluate` for the runner's output, read as a glTF viewer shows it."""
    return evaluate(
        true_mesh, recon.vertices, recon.faces, true_colour, textured_colour(recon), samples, seed
    )
