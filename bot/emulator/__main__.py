"""`python -m bot.emulator --port 8090 --callback-url http://127.0.0.1:8080/wecom/callback`"""

from __future__ import annotations

import argparse
import logging

from .server import run_emulator


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bot.emulator", description="Local WeCom emulator")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8090)
    parser.add_argument("--callback-url", help="where the driver posts WeCom events (the service's callback)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO)
    run_emulator(args.host, args.port, callback_url=args.callback_url)


if __name__ == "__main__":
    main()
