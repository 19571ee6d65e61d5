import pytest
import yaml

from segmentation_pipeline.config import CONFIG_ENV_VAR, config_path_in_use, load_config, parse_config
from segmentation_pipeline.errors import ConfigError
from segmentation_pipeline.paths import DEFAULT_CONFIG_PATH


def test_shipped_config_is_valid_and_its_relative_paths_follow_the_current_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config = load_config(DEFAULT_CONFIG_PATH)
    assert config.transactions.source == "synthetic"
    assert config.output_path() == tmp_path / "data" / "outputs"
    assert config.inbox_path() == tmp_path / "data" / "inbox"


def test_relative_paths_in_a_config_file_follow_the_file(tmp_path, monkeypatch):
    folder = tmp_path / "project"
    folder.mkdir()
    (folder / "my.yml").write_text(yaml.safe_dump({"output_dir": "out", "transactions": {"source": "file", "path": "log.csv"}}))
    monkeypatch.chdir(tmp_path)
    config = load_config("project/my.yml")  # a command-line path: relative to the current directory
    assert config.output_path() == folder / "out"
    assert config.transactions_path() == folder / "log.csv"


@pytest.mark.parametrize(
    "data, expected",
    [
        ({"transactions": {"columns": {"custmer_id": "X"}}}, "transactions.columns.custmer_id: unknown key"),
        ({"outputdir": "x"}, "outputdir: unknown key (allowed: output_dir"),
        ({"transactions": {"synthetic": {"customers": "many"}}}, "transactions.synthetic.customers"),
        ({"transactions": {"source": "database"}}, "transactions.source"),
        ({"transactions": {"source": "file"}}, "`path` is required"),
        ({"transactions": {"first_month": "2025-01"}}, "transactions.first_month: unknown key"),
        ({"publication": {"keep_sets": 0}}, "publication.keep_sets"),
        ({"transactions": {"columns": {"amount": None, "quantity": None}}}, "map either `amount`"),
    ],
)
def test_invalid_config_names_the_key(data, expected):
    with pytest.raises(ConfigError) as error:
        parse_config(data, source="my.yml")
    assert "my.yml" in str(error.value)
    assert expected in str(error.value)


def test_config_file_problems_name_the_file(tmp_path):
    missing = tmp_path / "missing.yml"
    with pytest.raises(ConfigError, match="missing.yml: configuration file not found"):
        load_config(missing)
    broken = tmp_path / "broken.yml"
    broken.write_text("transactions: [unclosed")
    with pytest.raises(ConfigError, match="broken.yml: not valid YAML"):
        load_config(broken)
    scalar = tmp_path / "scalar.yml"
    scalar.write_text("just text")
    with pytest.raises(ConfigError, match="top level must be a mapping"):
        load_config(scalar)


def test_explicit_path_then_environment_variable_then_the_built_in_default(tmp_path, monkeypatch):
    monkeypatch.delenv(CONFIG_ENV_VAR, raising=False)
    assert config_path_in_use() == DEFAULT_CONFIG_PATH
    path = tmp_path / "other.yml"
    path.write_text(yaml.safe_dump({"output_dir": "out"}))
    monkeypatch.setenv(CONFIG_ENV_VAR, str(path))
    assert config_path_in_use() == path
    assert load_config().output_path() == tmp_path / "out"
    assert config_path_in_use(tmp_path / "explicit.yml") == tmp_path / "explicit.yml"
