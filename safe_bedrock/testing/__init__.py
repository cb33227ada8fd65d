"""safe_bedrock.testing: a fake Amazon Bedrock that speaks the real wire protocol.

Two transports over one core, scripted the same way:

- `FakeBedrock`: in-process, no sockets; `fake.client()` returns a real boto3 bedrock-runtime client whose
  requests are answered by the fake (botocore's serialisation, signing, retries and parsing all run).
- `FakeBedrockServer`: a real HTTP server on 127.0.0.1 for any client or language (`.endpoint_url`).
  `connect(endpoint_url)` scripts one running in another process (`safe-bedrock fake-server`) the same way.

With pytest, the `fake_bedrock` fixture (installed with the package) gives each test a fresh `FakeBedrock`
and turns the retry policy's testing mode on (`set_testing`: no waiting between attempts) for that test.

```python
def test_answer_is_shown(fake_bedrock):
    fake_bedrock.add_response(text="Paris")
    client = fake_bedrock.client()
    out = client.converse(modelId="anthropic.claude-3-haiku-20240307-v1:0",
                          messages=[{"role": "user", "content": [{"text": "Capital of France?"}]}])
    assert out["output"]["message"]["content"][0]["text"] == "Paris"
```
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from safe_bedrock._retry import set_testing
from safe_bedrock.testing._fake import FakeBedrock
from safe_bedrock.testing._remote import connect
from safe_bedrock.testing._script import ANY, ScriptingAPI
from safe_bedrock.testing._wire import ConnectionDrop, FakeRequest

if TYPE_CHECKING:
    from safe_bedrock.testing._server import FakeBedrockServer

__all__ = [
    "ANY",
    "ConnectionDrop",
    "FakeBedrock",
    "FakeBedrockServer",
    "FakeRequest",
    "ScriptingAPI",
    "connect",
    "set_testing",
]


def __getattr__(name: str) -> Any:
    # The HTTP server pulls in http.server and socket machinery: load it only for code that asks for it.
    if name == "FakeBedrockServer":
        from safe_bedrock.testing._server import FakeBedrockServer

        return FakeBedrockServer
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
