"""The runner on a workstation: `recon run` on a capture folder, `recon demo` on a synthetic
one, with a terminal progress bar."""
