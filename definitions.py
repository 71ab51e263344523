"""What `dagster dev -f definitions.py` and workspace.yaml load: the SnapMap definitions."""

from snapmap_pipeline.defs import defs

__all__ = ["defs"]
