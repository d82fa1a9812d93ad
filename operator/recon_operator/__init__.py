"""The kopf operator that validates, queues and runs ReconJobs; carries no torch."""
