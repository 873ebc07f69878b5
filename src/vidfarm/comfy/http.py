"""HTTP transport for one ComfyUI server: base URL, optional bearer token, errors a person can act on."""

from __future__ import annotations

from typing import Any

import requests

from vidfarm.errors import AuthRejected, ComfyError, ServerRefused, ServerUnreachable


class ComfyHttp:
    def __init__(self, url: str, *, token: str | None = None, timeout: float = 30.0) -> None:
        if not url.startswith(("http://", "https://")):
            raise ComfyError(f"server URL {url!r} must start with http:// or https://")
        self.url = url.rstrip("/")
        self.timeout = timeout
        self._session = requests.Session()
        if token:
            self._session.headers["Authorization"] = f"Bearer {token}"

    @property
    def auth_header(self) -> dict[str, str]:
        value = self._session.headers.get("Authorization")
        return {"Authorization": str(value)} if value else {}

    def request(
        self, method: str, path: str, *, stream: bool = False, timeout: float | None = None, **kwargs: Any
    ) -> requests.Response:
        try:
            response = self._session.request(
                method, self.url + path, timeout=timeout or self.timeout, stream=stream, **kwargs
            )
        except requests.ConnectTimeout:  # before ConnectionError, its base: a silent host is not a refusal
            raise ServerUnreachable(f"ComfyUI at {self.url} did not accept a connection in time") from None
        except requests.ConnectionError as exc:
            raise ServerRefused(
                f"cannot reach ComfyUI at {self.url} ({type(exc).__name__}); is it running, and is the URL right?"
            ) from None
        except requests.Timeout:
            raise ServerUnreachable(f"ComfyUI at {self.url} did not answer {method} {path} in time") from None
        if response.status_code == 401 or (response.status_code == 403 and not path.startswith("/view")):
            raise AuthRejected(
                f"ComfyUI at {self.url} refused {method} {path} with HTTP {response.status_code}: "
                "the token is missing or wrong (give the worker's token)"
            )
        return response

    def get_json(self, path: str, **kwargs: Any) -> Any:
        response = self.request("GET", path, **kwargs)
        if response.status_code != 200:
            raise ComfyError(f"GET {path} on {self.url} gave HTTP {response.status_code}")
        return _json(response, path)

    def post(self, path: str, payload: Any = None, **kwargs: Any) -> requests.Response:
        return self.request("POST", path, json=payload, **kwargs)

    def close(self) -> None:
        self._session.close()


def _json(response: requests.Response, path: str) -> Any:
    try:
        return response.json()
    except ValueError:
        raise ComfyError(f"{path} answered with something that is not JSON: {response.text[:200]!r}") from None
