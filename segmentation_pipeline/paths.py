"""Where the project lives, so relative paths mean the same from the CLI, `dagster dev` and tests."""

from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]
CONFIG_DIR = PROJECT_ROOT / "data" / "config"
DEFAULT_CONFIG_PATH = CONFIG_DIR / "pipeline.yml"
DEFAULT_DAGSTER_HOME = PROJECT_ROOT / ".dagster_home"


def resolve(path: str | Path) -> Path:
    """Resolve a configured path: absolute as given, relative to the project root otherwise."""
    path = Path(path).expanduser()
    return path if path.is_absolute() else PROJECT_ROOT / path
