"""The pipeline's stages, in the order `pipeline.reconstruct` runs them: the capture loaded
and checked, depth fused, poses and surface refined, the unobserved surface trimmed and
closed, the texture fitted, the files exported."""
