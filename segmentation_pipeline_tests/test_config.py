import pytest
import yaml

from segmentation_pipeline.config import CONFIG_ENV_VAR, active_config, load_config, parse_config
from segmentation_pipeline.errors import ConfigError
from segmentation_pipeline.paths import DEFAULT_CONFIG_PATH, PROJECT_ROOT


def test_shipped_config_is_valid_and_uses_synthetic_data():
    config = load_config(DEFAULT_CONFIG_PATH)
    assert config.transactions.source == "synthetic"
    assert config.output_path() == PROJECT_ROOT / "data" / "outputs"


@pytest.mark.parametrize(
    "data, expected",
    [
        ({"transactions": {"columns": {"custmer_id": "X"}}}, "transactions.columns.custmer_id: unknown key"),
        ({"outputdir": "x"}, "outputdir: unknown key (allowed: output_dir"),
        ({"transactions": {"synthetic": {"customers": "many"}}}, "transactions.synthetic.customers"),
        ({"transactions": {"source": "database"}}, "transactions.source"),
        ({"transactions": {"source": "file"}}, "`path` is required"),
        ({"transactions": {"first_month": "2025-13"}}, "transactions.first_month"),
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


def test_environment_variable_selects_the_config(tmp_path, monkeypatch):
    path = tmp_path / "other.yml"
    path.write_text(yaml.safe_dump({"output_dir": str(tmp_path / "out")}))
    monkeypatch.setenv(CONFIG_ENV_VAR, str(path))
    assert active_config().output_path() == tmp_path / "out"
    path.write_text(yaml.safe_dump({"output_dir": str(tmp_path / "changed")}))
    assert active_config().output_path() == tmp_path / "changed"
