"""lightning_energy."""
