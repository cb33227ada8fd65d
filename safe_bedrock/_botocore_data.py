"""Moved to `safe_bedrock._service`; kept only for the imports not yet updated (delete with them)."""

from safe_bedrock._service import RUNTIME

__all__ = ["RUNTIME"]
