"""Experiment configs: `common.py` holds the fields every family shares, each family has one base
file (`configs/<family>/base.py`) that adds its own, and every other file overrides a base."""
