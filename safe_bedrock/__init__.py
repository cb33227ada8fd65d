"""safe-bedrock: a guarded, drop-in boto3 bedrock-runtime client and a wire-level fake Bedrock."""

__all__: list[str] = []
