"""The graph beyond one process: a real Celery run (a Redis broker and two worker processes started
here, the shipped deploy/executor-celery.yml pointed at them), and the deploy examples checked against
the executors' own config schemas."""

from __future__ import annotations

import copy
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import dagster as dg
import pytest
import yaml

import segmentation_pipeline
from segmentation_pipeline.config import ExecutorSettings, load_config
from segmentation_pipeline.definitions import build_definitions
from segmentation_pipeline.errors import ConfigError
from segmentation_pipeline.orchestration.instance import ensure_instance_home
from segmentation_pipeline.orchestration.resources import executor_from_config
from segmentation_pipeline.orchestration.runner import run_graph
from segmentation_pipeline.publication import OutputFolder, file_sha256
from segmentation_pipeline_tests.conftest import write_config

REPO_ROOT = Path(segmentation_pipeline.__file__).resolve().parents[1]
DEPLOY = REPO_ROOT / "deploy"
VENV_BIN = Path(sys.executable).parent
# Small but the whole graph: every asset and check of every domain runs.
SMALL = {
    "clustering": {"bootstraps": 2, "k_max": 4, "autoencoder_epochs": 5},
    "leads": {"synthetic": {"leads": 400}, "bootstraps": 2, "min_cluster_size": 20},
    "persona_texts": {"embedded_count": 40, "stability_seeds": 2},
}
WORKERS = ("w1", "w2")
RUN_TIMEOUT_SECONDS = 150  # measured ~45 s on 2 busy cores; a hung Celery run must not hang the suite


def _example(name: str) -> dict:
    return yaml.safe_load((DEPLOY / name).read_text())["executor"]


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _tail(path: Path, lines: int = 40) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else ""


def _stop_group(process: subprocess.Popen, grace_seconds: float = 30) -> None:
    """Stop a process this test started in its own session, with everything it spawned (a worker's
    pool): SIGTERM to its process group (Celery's warm shutdown), SIGKILL if still alive after `grace`."""
    try:
        os.killpg(process.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + grace_seconds
    while time.monotonic() < deadline:
        process.poll()  # reap the leader: only live members keep the group
        try:
            os.killpg(process.pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()


@pytest.fixture
def redis_url(tmp_path) -> Iterator[str]:
    """A throwaway Redis server on a free loopback port, data in a temp folder, nothing persisted."""
    server_bin = shutil.which("redis-server")
    if server_bin is None:
        pytest.skip("redis-server is not installed (Debian package: redis-server)")
    redis = pytest.importorskip("redis")
    folder = tmp_path / "redis"
    folder.mkdir()
    port = _free_port()
    log = folder / "server.log"
    server = subprocess.Popen(
        [server_bin, "--bind", "127.0.0.1", "--port", str(port), "--dir", str(folder),
         "--save", "", "--appendonly", "no", "--daemonize", "no"],
        stdout=log.open("w"), stderr=subprocess.STDOUT,
    )
    try:
        client = redis.Redis(host="127.0.0.1", port=port)
        deadline = time.monotonic() + 20
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                assert server.poll() is None and time.monotonic() < deadline, f"redis-server did not start:\n{_tail(log)}"
                time.sleep(0.1)
        client.close()
        yield f"redis://127.0.0.1:{port}"
    finally:
        server.terminate()
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


@dataclass
class CeleryCluster:
    executor: dict  # the `executor:` section of pipeline.yml
    dagster_home: Path
    env: dict[str, str]  # what every process of the deployment shares: instance, code, tools
    workers: dict[str, subprocess.Popen]
    logs: dict[str, Path]

    def worker_logs(self) -> str:
        return "\n".join(f"--- {name}\n{_tail(log)}" for name, log in self.logs.items())


def _on_local_redis(url: str, redis_url: str) -> str:
    """The shipped example's broker/backend URL with its host:port replaced by the test's server."""
    assert urlsplit(url).scheme == "redis", url
    return urlsplit(url)._replace(netloc=urlsplit(redis_url).netloc).geturl()


@pytest.fixture
def celery_cluster(redis_url, tmp_path) -> Iterator[CeleryCluster]:
    """deploy/executor-celery.yml and deploy/celery-worker.yaml pointed at the local Redis; two
    workers started with the README's command, one task at a time each; a persistent SQLite
    instance in a temporary DAGSTER_HOME shared by the CLI and the workers. Workers stopped after."""
    pytest.importorskip("dagster_celery")
    executor = copy.deepcopy(_example("executor-celery.yml"))
    for key in ("broker", "backend"):
        executor["config"][key] = _on_local_redis(executor["config"][key], redis_url)
    worker_settings = yaml.safe_load((DEPLOY / "celery-worker.yaml").read_text())
    worker_settings["execution"]["config"] = executor["config"]
    worker_yaml = tmp_path / "celery-worker.yaml"
    worker_yaml.write_text(yaml.safe_dump(worker_settings))

    home = ensure_instance_home(tmp_path / "dagster_home")
    # Each `dagster-celery worker start` opens the instance: on a new SQLite home, two doing it at
    # once both create the schema and leave it unreadable. Create it once first.
    dg.DagsterInstance.from_config(str(home)).dispose()
    env = {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}",  # `dagster-celery` runs `celery`
        "PYTHONPATH": str(REPO_ROOT),  # workers must import the code that launched the run
    }
    env.pop("SEGMENTATION_CONFIG", None)  # the run carries its config path to the workers
    workers, logs = {}, {}
    try:
        for name in WORKERS:
            logs[name] = tmp_path / f"{name}.log"
            workers[name] = subprocess.Popen(
                [str(VENV_BIN / "dagster-celery"), "worker", "start", "-A", "dagster_celery.app",
                 "-y", str(worker_yaml), "-n", name, "--", "--concurrency=1"],
                cwd=tmp_path, env=env, stdout=logs[name].open("w"), stderr=subprocess.STDOUT, start_new_session=True,
            )
        cluster = CeleryCluster(executor, home, env, workers, logs)
        _wait_until_workers_answer(cluster)
        yield cluster
    finally:
        for process in workers.values():
            _stop_group(process)


def _wait_until_workers_answer(cluster: CeleryCluster, timeout_seconds: float = 90) -> None:
    from dagster_celery.executor import CeleryExecutor
    from dagster_celery.make_app import make_app

    app = make_app(CeleryExecutor.for_cli(**cluster.executor["config"]).app_args())
    try:
        deadline = time.monotonic() + timeout_seconds
        while True:
            answered = {name.split("@")[0] for reply in app.control.ping(timeout=0.5) for name in reply}
            if answered >= set(WORKERS):
                return
            exited = [name for name, process in cluster.workers.items() if process.poll() is not None]
            assert not exited and time.monotonic() < deadline, (
                f"celery workers not ready (answered: {sorted(answered)}, exited: {exited}):\n{cluster.worker_logs()}"
            )
    finally:
        app.close()


def _check_verdicts(instance: dg.DagsterInstance, run_id: str) -> dict[tuple[str, str], tuple[bool, str]]:
    """(asset, check) -> (passed, severity) of every check evaluated in the run."""
    records = instance.get_records_for_run(run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION).records
    evaluations = [record.event_log_entry.dagster_event.event_specific_data for record in records]
    return {(e.asset_key.to_user_string(), e.check_name): (e.passed, e.severity.value) for e in evaluations}


def test_whole_graph_runs_on_two_celery_workers_and_publishes(celery_cluster, tmp_path):
    config_path = write_config(tmp_path / "celery", executor=celery_cluster.executor, **SMALL)
    started = time.perf_counter()
    cli = subprocess.Popen(
        [sys.executable, "-m", "segmentation_pipeline.cli", "run", "--config", str(config_path)],
        cwd=tmp_path, env=celery_cluster.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        start_new_session=True,
    )
    try:
        output, _ = cli.communicate(timeout=RUN_TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired:
        _stop_group(cli, grace_seconds=10)
        pytest.fail(f"the celery run took more than {RUN_TIMEOUT_SECONDS} s:\n{celery_cluster.worker_logs()}")
    celery_seconds = time.perf_counter() - started
    assert cli.returncode == 0, f"{output}\n{celery_cluster.worker_logs()}"

    with dg.DagsterInstance.from_config(str(celery_cluster.dagster_home)) as instance:
        [run] = instance.get_runs()
        assert run.status == dg.DagsterRunStatus.SUCCESS
        entries = [entry for entry in instance.all_logs(run.run_id) if entry.dagster_event is not None]
        definitions = build_definitions(config_path)
        graph = definitions.resolve_asset_graph()
        steps = set(definitions.resolve_job_def("full_refresh").graph.node_dict)

        # Every step ran, each once, in a pool process of one of the two workers this test started
        # (its process group), never in the CLI's process or this one; both workers took steps.
        succeeded = Counter(e.dagster_event.step_key for e in entries if e.dagster_event.event_type_value == "STEP_SUCCESS")
        assert set(succeeded) == steps and set(succeeded.values()) == {1}
        workers_of_step = {}
        for entry in entries:
            event = entry.dagster_event
            if event.event_type_value == "ENGINE_EVENT" and "Celery worker" in event.engine_event_data.metadata:
                workers_of_step[event.step_key] = event.engine_event_data.metadata["Celery worker"].value.split("@")[0]
        assert set(workers_of_step) == steps
        assert set(workers_of_step.values()) == set(WORKERS), Counter(workers_of_step.values())
        groups = {process.pid: name for name, process in celery_cluster.workers.items()}
        step_pids = {e.dagster_event.pid for e in entries if e.dagster_event.is_step_event}
        assert not step_pids & {os.getpid(), cli.pid}
        assert {groups.get(os.getpgid(pid)) for pid in step_pids} == set(WORKERS)

        # Every check was evaluated; the blocking ones passed.
        verdicts = _check_verdicts(instance, run.run_id)
        assert set(verdicts) == {(key.asset_key.to_user_string(), key.name) for key in graph.asset_check_keys}
        assert all(passed for passed, severity in verdicts.values() if severity == "ERROR"), verdicts

    # Published as one set: the manifest lists every asset, every file is there with its hash.
    out = load_config(config_path).output_path()
    published = OutputFolder(out).current()
    assert published is not None and published.run_id == run.run_id
    assets = {key.to_user_string() for key in graph.get_all_asset_keys()}
    assert set(published.manifest["assets"]) == assets - {"published_outputs"}
    for file, info in published.manifest["files"].items():
        assert file_sha256(out / file) == info["sha256"], file
    assert not list((out / ".staging").iterdir())

    # The executor changes where steps run, not what they produce: the same config in one process
    # gives the same check verdicts, the same segments and the same customer tables.
    in_process = write_config(tmp_path / "in_process", **SMALL)
    started = time.perf_counter()
    reference = dg.DagsterInstance.ephemeral()
    outcome = run_graph(in_process, instance=reference, emit=lambda line: None)
    in_process_seconds = time.perf_counter() - started
    assert outcome.success, outcome.errors + outcome.failed_checks
    assert _check_verdicts(reference, outcome.run_id) == verdicts
    expected = OutputFolder(load_config(in_process).output_path()).current().manifest["files"]
    assert set(expected) == set(published.manifest["files"])
    same_content = [f for f in expected if f.endswith("_cluster_assignments.parquet") or f in (
        "tables/rfm.parquet", "tables/customer_features_basic.parquet", "tables/customer_features_enriched.parquet")]
    assert len(same_content) >= 3 + 5
    for file in same_content:
        assert expected[file]["sha256"] == published.manifest["files"][file]["sha256"], file
    print(f"\ncelery run (CLI, 2 workers): {celery_seconds:.1f} s; in-process run: {in_process_seconds:.1f} s")


# --- the deploy examples against the executors' own config schemas --------------------------------


def _k8s_objects(config: dict):
    """What dagster-k8s builds from the k8s executor's config when a run starts: the volumes, mounts
    and step container settings parsed into Kubernetes models (unknown fields rejected). Dagster's
    config schema leaves these parts free-form, so only this catches a typo inside them."""
    from dagster_k8s.container_context import K8sContainerContext
    from dagster_k8s.job import UserDefinedDagsterK8sConfig

    return K8sContainerContext(
        namespace=config.get("job_namespace"),
        image_pull_policy=config.get("image_pull_policy"),
        env_secrets=config.get("env_secrets"),
        volume_mounts=config.get("volume_mounts"),
        volumes=config.get("volumes"),
        run_k8s_config=UserDefinedDagsterK8sConfig.from_dict(config.get("step_k8s_config", {})),
    )


def _schema_errors(executor_name: str, config: dict) -> list[str]:
    from dagster._config import validate_config

    definition = {
        "k8s": lambda: pytest.importorskip("dagster_k8s").k8s_job_executor,
        "celery": lambda: pytest.importorskip("dagster_celery").celery_executor,
    }[executor_name]()
    result = validate_config(definition.config_schema.config_type, config)
    return [] if result.success else [error.message for error in result.errors]


def test_k8s_example_matches_dagster_k8s_schema_and_kubernetes_models():
    executor = _example("executor-k8s.yml")
    assert executor["type"] == "k8s"
    assert _schema_errors("k8s", executor["config"]) == []
    assert executor_from_config(ExecutorSettings(**executor)).name == "k8s"  # what loading the definitions does
    context = _k8s_objects(executor["config"])
    assert context.namespace == "segmentation"
    [mount] = context.run_k8s_config.container_config["volume_mounts"]
    [volume] = context.run_k8s_config.pod_spec_config["volumes"]
    assert mount["mount_path"] == "/app/data/outputs" and mount["name"] == volume["name"]
    assert volume["persistent_volume_claim"]["claim_name"] == "segmentation-outputs"
    assert context.run_k8s_config.container_config["resources"]["limits"] == {"memory": "4Gi"}


def test_celery_examples_match_dagster_celery_schema():
    executor = _example("executor-celery.yml")
    assert executor["type"] == "celery"
    assert _schema_errors("celery", executor["config"]) == []
    assert executor_from_config(ExecutorSettings(**executor)).name == "celery"
    # `dagster-celery worker start -y deploy/celery-worker.yaml` validates it against the same schema.
    worker = yaml.safe_load((DEPLOY / "celery-worker.yaml").read_text())["execution"]["config"]
    assert worker == executor["config"]


@pytest.mark.parametrize("example, misspelled", [
    ("executor-k8s.yml", {"job_namepsace": "segmentation"}),
    ("executor-k8s.yml", {"max_concurent": 4}),
    ("executor-celery.yml", {"brokr": "redis://redis.internal:6379/0"}),
    ("executor-celery.yml", {"config_sources": {}}),
])
def test_a_misspelled_executor_key_is_refused_when_the_definitions_load(example, misspelled):
    executor = _example(example)
    config = {**executor["config"], **misspelled}
    [key] = misspelled
    errors = _schema_errors(executor["type"], config)
    assert len(errors) == 1 and f'"{key}"' in errors[0]
    with pytest.raises(ConfigError, match=key):
        executor_from_config(ExecutorSettings(type=executor["type"], config=config))


@pytest.mark.parametrize("path, misspelled, model", [
    (("volume_mounts", 0), {"mountpath": "/app/data/outputs"}, "V1VolumeMount"),
    (("volumes", 0, "persistentVolumeClaim"), {"claimname": "segmentation-outputs"}, "V1PersistentVolumeClaimVolumeSource"),
    (("step_k8s_config", "container_config"), {"resourcs": {}}, "V1Container"),
    (("step_k8s_config", "container_config", "resources"), {"request": {"cpu": "1"}}, "V1ResourceRequirements"),
])
def test_a_misspelled_kubernetes_field_in_the_k8s_example_is_refused(path, misspelled, model):
    """These parts are free-form for Dagster's schema (it accepts them); dagster-k8s's Kubernetes
    models reject them when the run starts."""
    config = copy.deepcopy(_example("executor-k8s.yml")["config"])
    target = config
    for step in path:
        target = target[step]
    target.update(misspelled)
    assert _schema_errors("k8s", config) == []
    with pytest.raises(Exception, match=rf"{model}: {{'{next(iter(misspelled))}'}}"):
        _k8s_objects(config)
