"""What is declared once and read by the flags: the loss terms, the student kinds, the precisions and the
data formats. Nothing here imports torch, so the configs are built from these declarations before torch
loads, and every layer above can read them (kd_bert/layers.py)."""
