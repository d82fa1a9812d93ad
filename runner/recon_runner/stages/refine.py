"""Refine the fused mesh by differentiable rasterization against the capture.

Fusion leaves the surface within about a voxel of the truth, rippled at voxel scale. Here
the mesh is rendered from every capture camera and its vertices move to make the rendered
depth match the depth maps, the silhouettes stay inside the masks and the per-vertex
colours match the images, with Laplacian and normal regularisation keeping it smooth.
Depth readings count by their confidence; the silhouette term only pulls where the capture
gave a mask (targets.outside is zero elsewhere), so holes in the depth never carve.

The vertices are optimised in the smooth parametrisation of Nicolet et al. ("Large Steps
in Inverse Rendering of Geometry", 2021): Adam updates u = (I + lambda L) x, and positions
come back through a sparse solve. Gradients then act on whole neighbourhoods rather than
single vertices, which is what lets a few hundred CPU steps converge without tangling.

With `poses` given, each view also gets a small rigid correction of its camera (a rotation
vector through roma and a translation, in the camera's frame) optimised with the vertices:
what remains of a phone's pose error after `pose_refine.align_views` shows as a depth
disagreement that no smooth surface can remove, and the gradient moves the camera instead.
The correction is relative to the targets' cameras; `pose_refine.anchor` afterwards keeps
the world frame.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import roma
import scipy.sparse as sp
import torch
import torch.nn.functional as F
from scipy.sparse.linalg import splu

from recon_runner.camera import to_clip
from recon_runner.control import StopToken
from recon_runner.mesh import Mesh
from recon_runner.render import Renderer
from recon_runner.stages.targets import Targets

FractionSink = Callable[[float, str], None]

# Observed points not covered by the rendered mesh, sampled per step for the pull term.
MISSING_SAMPLES = 512


@dataclass(frozen=True)
class RefineWeights:
    """Weights of the loss terms (depth in units of the voxel size)."""

    colour: float
    depth: float = 1.0
    mask: float = 1.0
    laplacian: float = 0.1
    normal: float = 0.5
    # Stiffness of the smooth parametrisation (the paper's lambda): higher moves broader
    # patches per step; low values still let voxel-scale ripple be corrected.
    smoothing: float = 2.0


@dataclass(frozen=True)
class PoseRates:
    """Adam step sizes of the per-view camera corrections."""

    rotation: float  # radians per step
    translation: float  # voxels per step


@dataclass(frozen=True)
class RefineConfig:
    """What a preset sets of refinement."""

    # Adam steps on vertex positions (spec iterations; 0 skips refinement), at `resolution`
    # pixels (longest image side; the capture is downsampled, never upsampled).
    iterations: int
    resolution: int
    # Views rendered per step, cycling through the capture: a third of the views per step
    # costs a third as much and converges almost as well.
    views_per_step: int
    learning_rate: float  # voxels per step
    # The presets share all but the colour weight.
    weights: RefineWeights


@dataclass(frozen=True)
class RefineResult:
    mesh: Mesh
    colours: npt.NDArray[np.float32]  # [V,3] per-vertex colour fitted alongside
    losses: list[float]
    # [B,4,4] per view: corrected camera-to-world = given camera-to-world @ correction
    # (identity without `poses`).
    corrections: npt.NDArray[np.float64]


class ViewPoses:
    """Per-view camera corrections as parameters, and the clip matrices they give."""

    def __init__(self, targets: Targets) -> None:
        device = targets.clip.device
        c2w = torch.tensor(np.stack([c.c2w for c in targets.cameras]), dtype=torch.float32)
        self.c2w = c2w.to(device)
        self.w2c = torch.linalg.inv(self.c2w)
        # The camera-to-clip part of each world-to-clip matrix.
        self.projection = targets.clip @ self.c2w
        n = len(targets.cameras)
        # One tensor per view: Adam leaves views a step did not render where they are.
        self.rotations = [torch.zeros(3, device=device, requires_grad=True) for _ in range(n)]
        self.translations = [torch.zeros(3, device=device, requires_grad=True) for _ in range(n)]

    def correction(self, index: int) -> torch.Tensor:
        """4x4 camera-frame correction of one view."""
        rotation = roma.rotvec_to_rotmat(self.rotations[index])
        top = torch.cat([rotation, self.translations[index].unsqueeze(1)], dim=1)
        bottom = torch.tensor([[0.0, 0.0, 0.0, 1.0]], device=top.device)
        return torch.cat([top, bottom], dim=0)

    def clip(self, indices: list[int]) -> torch.Tensor:
        """[b,4,4] world-to-clip through the corrected cameras."""
        out = []
        for i in indices:
            c = self.correction(i)
            rt = c[:3, :3].T
            inverse = torch.cat([torch.cat([rt, -(rt @ c[:3, 3:])], dim=1), c[3:].detach()], dim=0)
            out.append(self.projection[i] @ inverse @ self.w2c[i])
        return torch.stack(out)

    def moved(self, indices: list[int], points: torch.Tensor) -> torch.Tensor:
        """World points [b,H,W,3] of each view's depth, through its corrected camera."""
        with torch.no_grad():
            m = torch.stack([self.c2w[i] @ self.correction(i) @ self.w2c[i] for i in indices])
        return torch.einsum("bhwj,bij->bhwi", points, m[:, :3, :3]) + m[:, None, None, :3, 3]

    def result(self) -> npt.NDArray[np.float64]:
        with torch.no_grad():
            return np.stack(
                [self.correction(i).double().cpu().numpy() for i in range(len(self.rotations))]
            )


def uniform_laplacian(faces: npt.NDArray[np.int32], n_vertices: int) -> sp.csr_matrix:
    """Combinatorial Laplacian D - A of the mesh's edge graph."""
    f = faces.astype(np.int64)
    rows = np.concatenate([f[:, 0], f[:, 1], f[:, 2], f[:, 1], f[:, 2], f[:, 0]])
    cols = np.concatenate([f[:, 1], f[:, 2], f[:, 0], f[:, 0], f[:, 1], f[:, 2]])
    adjacency = sp.coo_matrix(
        (np.ones(len(rows)), (rows, cols)), shape=(n_vertices, n_vertices)
    ).tocsr()
    adjacency.data[:] = 1.0
    degree = np.asarray(adjacency.sum(axis=1)).ravel()
    laplacian: sp.csr_matrix = (sp.diags(degree) - adjacency).tocsr()
    return laplacian


class SmoothParametrisation:
    """x = (I + lambda L)^-1 u, and the matching map of gradients from x to u."""

    def __init__(self, laplacian: sp.csr_matrix, smoothing: float) -> None:
        n = laplacian.shape[0]
        self._matrix = (sp.eye(n) + smoothing * laplacian).tocsc()
        self._solver = splu(self._matrix, permc_spec="COLAMD")

    def to_u(self, x: torch.Tensor) -> torch.Tensor:
        u = self._matrix @ x.detach().cpu().double().numpy()
        return torch.from_numpy(u).to(device=x.device, dtype=torch.float32)

    def solve(self, u: torch.Tensor) -> torch.Tensor:
        """M^-1 u; M is symmetric, so it maps both positions and gradients."""
        x = self._solver.solve(u.detach().cpu().double().numpy())
        return torch.from_numpy(x).to(device=u.device, dtype=torch.float32)


def edge_face_pairs(faces: npt.NDArray[np.int32]) -> npt.NDArray[np.int64]:
    """[E,2] pairs of faces sharing an edge (manifold edges only)."""
    f = faces.astype(np.int64)
    edges = np.concatenate([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]])
    edges.sort(axis=1)
    owner = np.tile(np.arange(len(f)), 3)
    order = np.lexsort((edges[:, 1], edges[:, 0]))
    edges, owner = edges[order], owner[order]
    same = np.all(edges[1:] == edges[:-1], axis=1)
    first = np.nonzero(same)[0]
    # Exclude edges shared by more than two faces: their pairing is ambiguous.
    single = np.ones(len(first), dtype=bool)
    if len(first) > 1:
        run = first[1:] == first[:-1] + 1
        single[1:] &= ~run
        single[:-1] &= ~run
    first = first[single]
    return np.stack([owner[first], owner[first + 1]], axis=1)


def face_normals(vertices: torch.Tensor, faces: torch.Tensor) -> torch.Tensor:
    v = vertices[faces]
    n = torch.cross(v[:, 1] - v[:, 0], v[:, 2] - v[:, 0], dim=1)
    return F.normalize(n, dim=1, eps=1e-12)


def _sample_at(image: torch.Tensor, pixels: torch.Tensor) -> torch.Tensor:
    """Bilinear samples of images [B,H,W] at continuous pixel coordinates [B,N,2]."""
    height, width = image.shape[1], image.shape[2]
    grid = torch.stack(
        (2.0 * pixels[..., 0] / width - 1.0, 2.0 * pixels[..., 1] / height - 1.0), dim=-1
    )
    out = F.grid_sample(
        image.unsqueeze(1),
        grid.unsqueeze(1),
        mode="bilinear",
        padding_mode="border",
        align_corners=False,
    )
    return out[:, 0, 0]


def silhouette_excess(pos: torch.Tensor, targets: Targets) -> torch.Tensor:
    """How far vertices project outside the masks, in metres at their depth.

    Every point of the object projects inside every view's mask, so a vertex outside one is
    wrong whatever occludes it; the distance transform gives the way back in."""
    w = pos[..., 3].clamp(min=1e-6)
    height, width = targets.resolution
    px = (pos[..., 0] / w + 1.0) * (0.5 * width)
    py = (pos[..., 1] / w + 1.0) * (0.5 * height)
    outside_px = _sample_at(targets.outside, torch.stack((px, py), dim=-1))
    fx = torch.tensor([c.fx for c in targets.cameras], device=pos.device).unsqueeze(1)
    return torch.relu(outside_px - 0.5) * w / fx


def refine(
    mesh: Mesh,
    targets: Targets,
    renderer: Renderer,
    iterations: int,
    learning_rate: float,
    voxel: float,
    weights: RefineWeights,
    seed: int = 0,
    views_per_step: int | None = None,
    on_fraction: FractionSink | None = None,
    stop: StopToken | None = None,
    poses: PoseRates | None = None,
) -> RefineResult:
    """Move the vertices so renders match the views; `learning_rate` is in voxels per step.
    With `poses`, each view's camera is corrected alongside (`RefineResult.corrections`)."""
    device = targets.depth.device
    faces_np = mesh.faces
    faces = torch.from_numpy(faces_np.astype(np.int64)).to(device)
    faces_raster = torch.from_numpy(faces_np.astype(np.int32)).to(device)
    graph = uniform_laplacian(faces_np, len(mesh.vertices))
    param = SmoothParametrisation(graph, weights.smoothing)
    laplacian = _torch_sparse(graph, device)
    pairs = torch.from_numpy(edge_face_pairs(faces_np)).to(device)

    x0 = torch.from_numpy(mesh.vertices.astype(np.float32)).to(device)
    u = param.to_u(x0).requires_grad_(True)
    colours = torch.full((len(mesh.vertices), 3), 0.5, device=device, requires_grad=True)
    groups: list[dict[str, object]] = [
        {"params": [u], "lr": learning_rate * voxel},
        {"params": [colours], "lr": 0.05},
    ]
    cameras = ViewPoses(targets) if poses is not None else None
    if cameras is not None and poses is not None:
        groups.append({"params": cameras.rotations, "lr": poses.rotation})
        groups.append({"params": cameras.translations, "lr": poses.translation * voxel})
    optimiser = torch.optim.Adam(groups)
    generator = torch.Generator(device="cpu").manual_seed(seed)
    height, width = targets.resolution
    n_views = len(targets.cameras)
    per_step = n_views if views_per_step is None else max(1, min(views_per_step, n_views))
    losses: list[float] = []
    for step in range(iterations):
        if stop is not None:
            stop.check()
        x = param.solve(u).requires_grad_(True)
        chosen = [(step * per_step + j) % n_views for j in range(per_step)]
        views = targets.subset(chosen)
        surface = views.surface
        clip = views.clip if cameras is None else cameras.clip(chosen)
        points = views.points if cameras is None else cameras.moved(chosen, views.points)
        pos = to_clip(x, clip)
        rast = renderer.rasterize(pos, faces_raster, (height, width))
        attrs = torch.cat([pos[..., 3:4], colours.unsqueeze(0).expand(pos.shape[0], -1, -1)], -1)
        rendered = renderer.interpolate(attrs, rast, faces_raster)
        covered = rast[..., 3] > 0

        both = covered & surface
        depth_error = (rendered[..., 0] - views.depth)[both] / voxel
        # Each reading counts by its confidence (1 where the capture gave none).
        confidence = views.weight[both]
        huber = F.huber_loss(
            depth_error, torch.zeros_like(depth_error), delta=1.0, reduction="none"
        )
        loss = weights.depth * (huber * (confidence / confidence.mean().clamp(min=1e-6))).mean()
        seen = covered & views.mask
        if weights.colour > 0 and bool(seen.any()):
            loss = loss + weights.colour * (rendered[..., 1:][seen] - views.rgb[seen]).abs().mean()
        if weights.mask > 0:
            loss = loss + weights.mask * silhouette_excess(pos, views).mean() / voxel
            loss = (
                loss
                + weights.mask
                * _missing_pull(x, points[surface & ~covered], voxel, generator)
                / voxel
            )
        if weights.laplacian > 0:
            lx = torch.sparse.mm(laplacian, x)
            loss = loss + weights.laplacian * (lx.square().sum(1).mean()) / voxel**2
        if weights.normal > 0 and len(pairs) > 0:
            normals = face_normals(x, faces)
            cos = (normals[pairs[:, 0]] * normals[pairs[:, 1]]).sum(1)
            loss = loss + weights.normal * (1.0 - cos).mean()

        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        assert x.grad is not None
        u.grad = param.solve(x.grad)
        optimiser.step()
        losses.append(float(loss.detach()))
        if on_fraction is not None:
            on_fraction((step + 1) / iterations, f"iteration {step + 1}/{iterations}")

    with torch.no_grad():
        final = param.solve(u).cpu().numpy().astype(np.float32)
        fitted = colours.detach().clamp(0.0, 1.0).cpu().numpy().astype(np.float32)
    identity = np.tile(np.eye(4), (n_views, 1, 1))
    corrections = identity if cameras is None else cameras.result()
    return RefineResult(Mesh(final, mesh.faces), fitted, losses, corrections)


def _missing_pull(
    x: torch.Tensor, points: torch.Tensor, slack: float, generator: torch.Generator
) -> torch.Tensor:
    """Distance from observed surface points the mesh does not cover to their nearest
    vertex, beyond `slack` (points between vertices are covered by faces, not vertices):
    the only force that grows the mesh into parts fusion missed."""
    if len(points) == 0:
        return x.sum() * 0.0
    if len(points) > MISSING_SAMPLES:
        pick = torch.randperm(len(points), generator=generator)[:MISSING_SAMPLES]
        points = points[pick.to(points.device)]
    with torch.no_grad():
        nearest = torch.cdist(points, x).argmin(dim=1)
    return torch.relu((x[nearest] - points).norm(dim=1) - slack).mean()


def _torch_sparse(matrix: sp.csr_matrix, device: torch.device) -> torch.Tensor:
    coo = matrix.tocoo()
    indices = torch.from_numpy(np.stack([coo.row, coo.col]).astype(np.int64))
    values = torch.from_numpy(coo.data.astype(np.float32))
    tensor = torch.sparse_coo_tensor(indices, values, coo.shape, check_invariants=False)
    return tensor.coalesce().to(device)
