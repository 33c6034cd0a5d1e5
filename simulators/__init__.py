"""Simulated mines that speak minewatch's feeds, with labelled ground truth."""
