"""Give the refined mesh a texture: UV atlas, colours projected from the views, then fitted.

Projection first, because it is exact where a texel is plainly visible (the colour the camera
recorded at that surface point), and the optimisation after it only has to settle blends
and view disagreements. Every texel ends up with a colour: texels no camera saw take the
colour of the nearest seen surface point in 3D (so both sides of a UV seam agree), and
texels outside the charts copy their nearest chart texel, so bilinear filtering at chart
borders never reaches the empty background of the atlas (no black seams).

The views are blended after their exposure and white balance are brought to one another
(`exposure.fit_gains`), robustly (`exposure.robust_blend`: a highlight one view sees and
the others don't stays out), and the fit after it compares renders with the gain-corrected
images under a Cauchy loss, for the same reason.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import torch
import torch.nn.functional as F
import xatlas
from scipy.ndimage import binary_erosion, distance_transform_edt
from scipy.spatial import cKDTree

from recon_runner.camera import to_clip
from recon_runner.control import StopToken
from recon_runner.mesh import Mesh, TexturedMesh
from recon_runner.render import Renderer
from recon_runner.stages.exposure import ROBUST_SCALE, fit_gains, robust_blend
from recon_runner.stages.targets import Targets

FractionSink = Callable[[float, str], None]

# Padding between charts, in texels: room for bilinear filtering and the mip-free viewer.
CHART_PADDING = 4
# Views see a texel well when they face it: weight = cos(angle) ** SHARPNESS.
SHARPNESS = 4.0
# A texel counts as seen by a view when its depth agrees with the rendered surface there
# within this many voxels (hidden texels are behind the surface by more).
VISIBILITY_VOXELS = 1.5


@dataclass(frozen=True)
class TextureConfig:
    """What a preset sets of texturing."""

    size: int  # atlas width and height in texels (spec textureSize)
    # Adam steps optimising the atlas through the renderer, at `resolution` pixels.
    iterations: int
    resolution: int
    # xatlas chart growing passes: 0 is about twice as fast as 1 on large meshes.
    chart_iterations: int
    learning_rate: float = 0.001


@dataclass(frozen=True)
class Atlas:
    vertex_map: npt.NDArray[np.int64]  # atlas vertex -> mesh vertex
    faces: npt.NDArray[np.int32]
    uvs: npt.NDArray[np.float32]  # glTF: (0, 0) at the top-left texel


def unwrap(mesh: Mesh, size: int, chart_iterations: int = 1) -> Atlas:
    """xatlas charts packed into a `size` square; vertices on seams come back duplicated.

    `chart_iterations` trades chart quality for time (0 grows charts once, which is about
    twice as fast on meshes of tens of thousands of faces)."""
    atlas = xatlas.Atlas()
    atlas.add_mesh(mesh.vertices.astype(np.float32), mesh.faces.astype(np.uint32))
    chart_options = xatlas.ChartOptions()
    chart_options.max_iterations = chart_iterations
    pack_options = xatlas.PackOptions()
    pack_options.resolution = size
    pack_options.padding = CHART_PADDING
    pack_options.bilinear = True
    atlas.generate(chart_options, pack_options)
    vertex_map, faces, uvs = atlas[0]
    return Atlas(
        vertex_map=np.asarray(vertex_map, dtype=np.int64),
        faces=np.asarray(faces, dtype=np.int32),
        uvs=np.asarray(uvs, dtype=np.float32),
    )


@dataclass(frozen=True)
class Texels:
    """The surface point under each texel centre of the atlas."""

    covered: torch.Tensor  # [T,T] bool: a face covers the texel centre
    positions: torch.Tensor  # [T,T,3] world
    normals: torch.Tensor  # [T,T,3] unit, outward


def texel_surface(
    renderer: Renderer,
    vertices: torch.Tensor,
    faces: torch.Tensor,
    uvs: torch.Tensor,
    size: int,
) -> Texels:
    """Rasterize the atlas in UV space: clip (2u - 1, 2v - 1) puts v = 0 on row 0, the
    row the texture sampler reads for v = 0."""
    clip = torch.cat(
        [uvs * 2.0 - 1.0, torch.zeros_like(uvs[:, :1]), torch.ones_like(uvs[:, :1])], dim=1
    )
    with torch.no_grad():
        rast = renderer.rasterize(clip.unsqueeze(0), faces, (size, size))
        positions = renderer.interpolate(vertices.unsqueeze(0), rast, faces)[0]
        face = rast[0, ..., 3].long() - 1
    covered = face >= 0
    v = vertices[faces.long()]
    face_normal = F.normalize(torch.cross(v[:, 1] - v[:, 0], v[:, 2] - v[:, 0], dim=1), dim=1)
    normals = torch.zeros_like(positions)
    normals[covered] = face_normal[face[covered]]
    return Texels(covered, positions, normals)


def rendered_depth(
    renderer: Renderer, vertices: torch.Tensor, faces: torch.Tensor, targets: Targets
) -> torch.Tensor:
    """[B,H,W] z-depth of the mesh from every target camera, 0 where it is absent."""
    with torch.no_grad():
        pos = to_clip(vertices, targets.clip)
        rast = renderer.rasterize(pos, faces, targets.resolution)
        return renderer.interpolate(pos[..., 3:4], rast, faces)[..., 0]


def project_views(
    texels: Texels, targets: Targets, depth: torch.Tensor, voxel: float
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The views' colours blended at each covered texel (gain-corrected, robustly), the
    total weight (0 where no view sees the texel) and the views' gains [B,3]."""
    points = texels.positions[texels.covered]
    normals = texels.normals[texels.covered]
    colours, weights = [], []
    inner = _inner_masks(targets)
    height, width = targets.resolution
    for b, camera in enumerate(targets.cameras):
        clip = to_clip(points, targets.clip[b : b + 1])[0]
        w = clip[:, 3]
        px = (clip[:, 0] / w + 1.0) * (0.5 * width)
        py = (clip[:, 1] / w + 1.0) * (0.5 * height)
        col = px.floor().long().clamp(0, width - 1)
        row = py.floor().long().clamp(0, height - 1)
        inside = (px >= 0) & (px < width) & (py >= 0) & (py < height) & (w > 0)
        surface_depth = depth[b, row, col]
        visible = inside & inner[b, row, col] & (surface_depth > 0)
        visible &= (w - surface_depth).abs() < VISIBILITY_VOXELS * voxel
        to_camera = F.normalize(
            torch.as_tensor(camera.position, dtype=points.dtype, device=points.device) - points,
            dim=1,
        )
        facing = (normals * to_camera).sum(1).clamp(min=0.0)
        weights.append(facing.pow(SHARPNESS) * visible)
        colours.append(_bilinear(targets.rgb[b], px, py))
    stacked, weight = torch.stack(colours), torch.stack(weights)  # [B,N,3], [B,N]
    gains = fit_gains(stacked, weight)
    colour = robust_blend(stacked / gains[:, None, :], weight)
    return colour, weight.sum(dim=0), gains


def _inner_masks(targets: Targets) -> torch.Tensor:
    """Masks shrunk by a pixel: silhouette pixels mix object and background colour."""
    masks = targets.mask.cpu().numpy()
    inner = np.stack([binary_erosion(m, iterations=1) for m in masks])
    return torch.from_numpy(inner).to(targets.mask.device)


def _bilinear(image: torch.Tensor, px: torch.Tensor, py: torch.Tensor) -> torch.Tensor:
    """Colours [N,3] of image [H,W,3] at continuous pixel coordinates."""
    height, width = image.shape[0], image.shape[1]
    grid = torch.stack((2.0 * px / width - 1.0, 2.0 * py / height - 1.0), dim=1)
    out = F.grid_sample(
        image.permute(2, 0, 1).unsqueeze(0),
        grid.view(1, 1, -1, 2),
        mode="bilinear",
        padding_mode="border",
        align_corners=False,
    )
    return out[0, :, 0].T


def fill_unseen(
    colour: npt.NDArray[np.float32], seen: npt.NDArray[np.bool_], points: npt.NDArray[np.float32]
) -> npt.NDArray[np.float32]:
    """Colour of the nearest seen surface point for each unseen texel (all arrays over the
    covered texels). Nearest in 3D, not in the atlas, so seams stay invisible."""
    if seen.all() or not seen.any():
        return colour if seen.any() else np.full_like(colour, 0.5)
    tree = cKDTree(points[seen])
    _, nearest = tree.query(points[~seen], k=1, workers=-1)
    filled = colour.copy()
    filled[~seen] = colour[seen][nearest]
    return filled


def dilate(
    texture: npt.NDArray[np.float32], covered: npt.NDArray[np.bool_]
) -> npt.NDArray[np.float32]:
    """Every texel outside the charts takes its nearest chart texel's colour."""
    if covered.all() or not covered.any():
        return texture
    _, (rows, cols) = distance_transform_edt(~covered, return_indices=True)
    out: npt.NDArray[np.float32] = texture[rows, cols]
    return out


def texture_mesh(
    mesh: Mesh,
    targets: Targets,
    renderer: Renderer,
    size: int,
    iterations: int,
    learning_rate: float,
    voxel: float,
    chart_iterations: int = 1,
    on_fraction: FractionSink | None = None,
    stop: StopToken | None = None,
    filled: npt.NDArray[np.bool_] | None = None,
) -> TexturedMesh:
    """`filled` marks faces of `mesh` no camera observed (closeHoles' fill); they get texels
    like any face, coloured from the nearest seen surface, and stay marked on the result
    (xatlas keeps the face order)."""

    def report(fraction: float, message: str) -> None:
        if on_fraction is not None:
            on_fraction(fraction, message)

    atlas = unwrap(mesh, size, chart_iterations)
    report(0.3, f"UV atlas: {len(atlas.faces)} faces")
    if stop is not None:
        stop.check()
    device = targets.rgb.device
    vertices = torch.from_numpy(mesh.vertices[atlas.vertex_map]).to(device)
    faces = torch.from_numpy(atlas.faces).to(device)
    uvs = torch.from_numpy(atlas.uvs).to(device)
    texels = texel_surface(renderer, vertices, faces, uvs, size)
    depth = rendered_depth(renderer, vertices, faces, targets)
    colour, weight, gains = project_views(texels, targets, depth, voxel)
    covered = texels.covered.cpu().numpy()
    texel_colours = fill_unseen(
        colour.cpu().numpy(),
        (weight > 0).cpu().numpy(),
        texels.positions[texels.covered].cpu().numpy(),
    )
    image = np.zeros((size, size, 3), dtype=np.float32)
    image[covered] = texel_colours
    image = dilate(image, covered)
    report(0.5, "texture projected from the views")

    if iterations > 0:
        image = optimise_texture(
            image,
            covered,
            vertices,
            faces,
            uvs,
            targets,
            renderer,
            iterations,
            learning_rate,
            lambda f, m: report(0.5 + 0.5 * f, m),
            stop,
            gains=gains,
        )
    texture = np.clip(np.rint(image * 255.0), 0, 255).astype(np.uint8)
    report(1.0, "texture done")
    return TexturedMesh(
        vertices=mesh.vertices[atlas.vertex_map].astype(np.float32),
        faces=atlas.faces,
        uvs=atlas.uvs,
        texture=texture,
        filled=np.zeros(len(atlas.faces), dtype=bool) if filled is None else filled.copy(),
    )


def optimise_texture(
    image: npt.NDArray[np.float32],
    covered: npt.NDArray[np.bool_],
    vertices: torch.Tensor,
    faces: torch.Tensor,
    uvs: torch.Tensor,
    targets: Targets,
    renderer: Renderer,
    iterations: int,
    learning_rate: float,
    on_fraction: FractionSink | None = None,
    stop: StopToken | None = None,
    gains: torch.Tensor | None = None,
) -> npt.NDArray[np.float32]:
    """Fit the texture so renders through the renderer match the input images (divided by
    each view's `gains` [B,3], under a Cauchy loss that a highlight barely moves).

    The geometry is fixed, so each view is rasterized once and only the pixels that compare
    (object pixels away from the silhouette) are sampled each step. The fit is a correction
    to the projected texture, kept at half the atlas resolution and upsampled: a view
    pixel spans several texels, and a full-resolution correction would only move the few
    texels each pixel samples, leaving a dotted pattern."""
    device = targets.rgb.device
    with torch.no_grad():
        pos = to_clip(vertices, targets.clip)
        rast = renderer.rasterize(pos, faces, targets.resolution)
        uv = renderer.interpolate(uvs.unsqueeze(0), rast, faces)
    use = (rast[..., 3] > 0) & _inner_masks(targets)
    rgb = targets.rgb if gains is None else targets.rgb / gains[:, None, None, :]
    wanted = rgb[use]
    # The compared pixels as one image of N x 1 texture lookups.
    lookups = uv[use].view(1, -1, 1, 2)
    base = torch.from_numpy(image).to(device).permute(2, 0, 1).unsqueeze(0)  # [1,3,T,T]
    size = image.shape[0]
    correction = torch.zeros(
        1, 3, max(1, size // 2), max(1, size // 2), device=device, requires_grad=True
    )
    optimiser = torch.optim.Adam([correction], lr=learning_rate)

    def current() -> torch.Tensor:
        upsampled = F.interpolate(correction, size=(size, size), mode="bilinear")
        return (base + upsampled).permute(0, 2, 3, 1)  # [1,T,T,3]

    for step in range(iterations):
        if stop is not None:
            stop.check()
        rendered = renderer.texture(current(), lookups, filter_mode="linear", boundary_mode="clamp")
        residual = (rendered.view(-1, 3) - wanted) / ROBUST_SCALE
        loss = ROBUST_SCALE**2 * torch.log1p(residual.square()).mean()
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
        if on_fraction is not None:
            on_fraction((step + 1) / iterations, f"texture iteration {step + 1}/{iterations}")
    with torch.no_grad():
        fitted = current()[0].clamp(0.0, 1.0).cpu().numpy()
    return dilate(fitted.astype(np.float32), covered)
