"""The ReconJob API shared by the operator and the runner: names, models and the runner's
parameter contract. Depends on pydantic only, so both images can import it."""
