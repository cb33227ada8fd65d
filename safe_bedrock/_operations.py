"""Moved to `safe_bedrock._service`; kept only for the imports not yet updated (delete with them)."""

from safe_bedrock._service import OperationSpec, operation_specs

__all__ = ["OperationSpec", "operation_specs"]
