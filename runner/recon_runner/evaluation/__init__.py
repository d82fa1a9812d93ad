"""How good a reconstruction is: against the true object (benchmarks, tests, `recon demo`)
and against the capture's own views (metrics.json)."""
