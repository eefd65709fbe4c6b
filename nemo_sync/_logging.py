"""The ``nemo_sync`` logger, and ``NEMO_LOG=debug`` to turn it on without code."""

from __future__ import annotations

import logging
import os

logger = logging.getLogger("nemo_sync")

_configured = False


def configure_from_env() -> None:
    """Honour NEMO_LOG (debug, info, warning) once per process by adding a stderr handler."""
    global _configured  # noqa: PLW0603 - a process-wide, once-only switch
    if _configured:
        return
    _configured = True
    level_name = os.environ.get("NEMO_LOG", "").strip().upper()
    if not level_name:
        return
    level = logging.getLevelName(level_name)
    if not isinstance(level, int):
        logger.warning("NEMO_LOG=%r is not a log level; use debug, info or warning", level_name)
        return
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
    logger.addHandler(handler)
    logger.setLevel(level)
