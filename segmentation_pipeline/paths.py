"""Where the package's own files live, and what a relative path in a config file means.

The package ships its defaults (`pipeline.yml`, the synthetic personas and product hierarchy)
inside itself, so a non-editable install runs from any directory. A relative path in a config file
is relative to that file's folder (the file can be moved together with its data); in the built-in
default config, which has no folder of the user's, it is relative to the current directory.
"""

from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
DEFAULT_CONFIG_PATH = PACKAGE_DIR / "pipeline.yml"
DAGSTER_HOME_NAME = ".dagster_home"  # the instance folder when $DAGSTER_HOME is not set


def resolve_against(base: Path, path: str | Path) -> Path:
    """`path` made absolute: as given when absolute (after ~ expansion), else under `base`."""
    path = Path(path).expanduser()
    return path if path.is_absolute() else (Path(base) / path).resolve()
