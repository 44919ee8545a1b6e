"""The session journal: what a strategy owns, durable across crashes (see :mod:`.store`)."""

from .identity import (
    check_strategy_id,
    default_strategy_id,
    journal_path,
    resume_command,
    state_dir,
)
from .store import TERMINAL, Journal

__all__ = ["TERMINAL", "Journal", "check_strategy_id", "default_strategy_id", "journal_path", "resume_command",
           "state_dir"]
