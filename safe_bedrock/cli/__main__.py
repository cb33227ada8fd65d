"""`python -m safe_bedrock.cli`: the same as the `safe-bedrock` console script."""

from safe_bedrock.cli import main

raise SystemExit(main())
