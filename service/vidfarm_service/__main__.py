"""`python -m vidfarm_service [--host H] [--port P]`: the service, configured by VIDFARM_SERVICE_* variables."""

from __future__ import annotations

import argparse
import logging
import sys

from pydantic import ValidationError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="vidfarm-service", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # its INFO lines carry the bot token in URLs

    import uvicorn

    from vidfarm_service.app import create_app
    from vidfarm_service.config import Settings

    try:
        settings = Settings()  # type: ignore[call-arg]  # required fields come from the environment
    except ValidationError as exc:
        print(f"vidfarm-service: configuration refused:\n{exc}", file=sys.stderr)
        return 2
    uvicorn.run(create_app(settings), host=args.host, port=args.port, log_level="info")
    return 0


if __name__ == "__main__":
    sys.exit(main())
