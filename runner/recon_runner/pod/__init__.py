"""The runner inside its pod: the capture downloaded and the outputs uploaded, progress
reported to the ReconJob's status, `recon runner` (the runner image's entrypoint)."""
