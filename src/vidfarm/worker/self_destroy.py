"""A rented worker destroys its own instance, with the key its provider gave that instance (never an account key).

The provider is told by the variables it puts in every container (reference/gpu-clouds.md §2, §4):

    RunPod   RUNPOD_POD_ID + RUNPOD_API_KEY (pod-scoped)  ->  DELETE {REST_URL}/pods/{id}
    Vast.ai  CONTAINER_ID + CONTAINER_API_KEY (per-instance)  ->  DELETE {API_URL}/api/v0/instances/{id}/

The key is read from the environment and sent only in the Authorization header: never on a command line, never
logged. 5xx answers and connection errors are retried with a bounded backoff; 404 means already gone. The base URLs
are the fleet providers' own constants, overridable by RUNPOD_REST_URL / VAST_URL (tests point them at a fake).

    python -m vidfarm.worker.self_destroy          # exit 0: destroyed or already gone; 1: failed; 2: no provider
    python -m vidfarm.worker.self_destroy --check  # exit 0 when a provider is detected (nothing is called)
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import requests

from vidfarm.fleet import runpod, vast

log = logging.getLogger(__name__)

LOOKED_FOR = "RUNPOD_POD_ID + RUNPOD_API_KEY (RunPod) or CONTAINER_ID + CONTAINER_API_KEY (Vast.ai)"


@dataclass(frozen=True)
class Target:
    """This worker's own instance: where to DELETE it and the instance-scoped key (hidden from repr)."""

    provider: str
    instance_id: str
    url: str
    key: str = field(repr=False)


def detect(env: Mapping[str, str] | None = None) -> Target | None:
    """The instance this process runs in, from the provider's variables; None when neither provider's are set."""
    env = os.environ if env is None else env
    pod, pod_key = env.get("RUNPOD_POD_ID", ""), env.get("RUNPOD_API_KEY", "")
    if pod and pod_key:
        base = (env.get(runpod.REST_URL_ENV) or runpod.REST_URL).rstrip("/")
        return Target("RunPod", pod, f"{base}/pods/{pod}", pod_key)
    container, container_key = env.get("CONTAINER_ID", ""), env.get("CONTAINER_API_KEY", "")
    if container and container_key:
        base = (env.get(vast.API_URL_ENV) or vast.API_URL).rstrip("/")
        return Target("Vast.ai", container, f"{base}/api/v0/instances/{container}/", container_key)
    return None


def destroy(
    target: Target,
    *,
    attempts: int = 6,
    backoff_s: float = 2.0,
    timeout_s: float = 30.0,
    sleep: Callable[[float], None] = time.sleep,
) -> bool:
    """DELETE the instance; True when it is destroyed or already gone. Retries 5xx and connection errors
    (`attempts` in all, backoff doubling from `backoff_s`, at most 60 s); any other refusal is final."""
    what = f"{target.provider} instance {target.instance_id}"
    for attempt in range(1, attempts + 1):
        try:
            answer = requests.delete(target.url, headers={"Authorization": f"Bearer {target.key}"}, timeout=timeout_s)
        except requests.RequestException as exc:
            problem = type(exc).__name__
        else:
            if answer.status_code == 404:
                log.warning("self-destroy: %s is already gone", what)
                return True
            if answer.status_code < 400:
                log.warning("self-destroy: %s destroyed", what)
                return True
            if answer.status_code < 500:
                log.error("self-destroy: %s refused (HTTP %d): check its scoped key", what, answer.status_code)
                return False
            problem = f"HTTP {answer.status_code}"
        if attempt < attempts:
            delay = min(backoff_s * 2 ** (attempt - 1), 60.0)
            log.warning("self-destroy: %s failed (%s), try %d of %d; again in %g s", what, problem, attempt,
                        attempts, delay)  # fmt: skip
            sleep(delay)
        else:
            log.error("self-destroy: %s failed (%s) after %d tries", what, problem, attempts)
    return False


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--check", action="store_true", help="only say whether a provider is detected")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="[self-destroy] %(message)s", stream=sys.stderr)
    target = detect()
    if target is None:
        print(f"[self-destroy] no provider detected: looked for {LOOKED_FOR}", file=sys.stderr)
        return 2
    if args.check:
        return 0
    return 0 if destroy(target) else 1


if __name__ == "__main__":
    sys.exit(main())
