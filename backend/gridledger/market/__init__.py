"""Orders and the per-slot double auction."""
