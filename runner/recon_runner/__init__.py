"""The reconstruction runner: a multi-view RGB-D capture in, a textured mesh out.

`pipeline` runs the `stages` in order on a `render` backend; `pod` is the runner inside
its Kubernetes Job, `local` the same pipeline from a workstation's command line,
`importers` turn other tools' captures into the input layout, `evaluation` measures a
result, and `synthetic` makes captures of known objects to measure against.
"""
