"""Optimization passes, one per file; `pipeline.py` runs them in order."""

from .pipeline import MODES, PipelineResult, Stage, optimize, optimize_derivative, pipeline

__all__ = ["MODES", "PipelineResult", "Stage", "optimize", "optimize_derivative", "pipeline"]
