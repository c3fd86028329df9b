"""Cluster optimisation of CEL (Section 3.2): split (GPCA and ablations), reassignment, criteria."""
