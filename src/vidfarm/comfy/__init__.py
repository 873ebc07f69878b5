"""A ComfyUI client on requests + websocket-client that copes with every server version a worker may run.

`ComfyClient` is the HTTP side (one server), `EventStream` the WebSocket side, `PromptRun` one prompt from
submission to checked local files.
"""

from vidfarm.comfy.client import ComfyClient, ServerFeatures
from vidfarm.comfy.run import Progress, PromptRun, RunResult

__all__ = ["ComfyClient", "ServerFeatures", "PromptRun", "Progress", "RunResult"]
