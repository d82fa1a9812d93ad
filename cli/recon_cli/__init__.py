"""The `recon` command: one entry point for the operator, the runner and the local stack."""
