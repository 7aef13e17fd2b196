"""Where the local mesh keeps its state, and where `tzurot chat` saves an answer's files (a
module of its own: the CLI's help imports it)."""

from pathlib import Path

DEFAULT_DATA_DIR = Path(".data")
DEFAULT_FILES_DIR = Path()
"""Where `tzurot chat` saves the files an answer carries (generated images): the current
folder, as a download would (`--files-dir` chooses another)."""
