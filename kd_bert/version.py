"""The package's version, recorded with every run; in a module of its own so that the jobs read it without
importing the API above them (kd_bert/layers.py)."""

__version__ = "0.1.0"
