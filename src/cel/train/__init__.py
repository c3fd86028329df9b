"""Training: one generic full-batch trainer with named callback events, and the run driver."""
