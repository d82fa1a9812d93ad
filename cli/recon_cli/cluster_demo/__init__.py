"""The whole flow on the local stack, as `make demo` runs it: the Helm chart installed,
a synthetic capture of a known object uploaded to MinIO, the example ReconJob applied and
watched, and the mesh downloaded and measured against the true object.

The end-to-end tests drive the same pieces, so what the demo shows is what they check.
"""
