"""`sftforge push`: the Hub layout and dataset card (checked by loading the dry-run folder
with `datasets`), the token's sources and that it is never written, and — opt-in, with
HF_TOKEN set — a real upload."""

from __future__ import annotations

import json
import os
import re
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml

from sftforge.flows.cli import main

TOKEN = "hf_sftforgeTestToken_" + uuid.uuid4().hex  # a value that appears nowhere else


def card_yaml(folder: Path) -> tuple[dict, str]:
    text = (folder / "README.md").read_text()
    _, meta, body = text.split("---\n", 2)
    return yaml.safe_load(meta), body


def test_dry_run_folder_loads_with_datasets(demo_run, tmp_path):
    import datasets

    dest = tmp_path / "hub"
    assert main(["push", str(demo_run.out), "--repo-id", "acme/demo", "--dry-run", str(dest)]) == 0
    files = sorted(p.name for p in (dest / "data").iterdir())
    assert files == ["eval-00000-of-00001.parquet", "train-00000-of-00001.parquet"]
    assert sorted(p.name for p in dest.iterdir()) == ["README.md", "data"]

    loaded = datasets.load_dataset(str(dest))
    final = demo_run.body["stages"][-1]["out"]
    assert set(loaded) == {"train", "eval"}
    assert loaded["eval"].num_rows == 20 and loaded["train"].num_rows == final - 20
    features = loaded["train"].features
    assert list(features) == ["id", "source", "model", "messages", "meta"]
    assert features["messages"].feature["role"].dtype == "string"
    row = loaded["train"][0]
    assert row["messages"][0]["role"] in ("user", "system") and json.loads(row["meta"])

    meta, body = card_yaml(dest)
    assert meta["configs"] == [
        {
            "config_name": "default",
            "data_files": [
                {"split": "eval", "path": "data/eval-*"},
                {"split": "train", "path": "data/train-*"},
            ],
        }
    ]
    splits = {s["name"]: s for s in meta["dataset_info"]["splits"]}
    assert splits["eval"]["num_examples"] == 20 and splits["train"]["num_bytes"] > 0
    assert [f["name"] for f in meta["dataset_info"]["features"]] == list(features)
    assert meta["license"] == ["cc-by-4.0"] and "en" in meta["language"]
    # The body: the recipe, sources and licenses, per-stage counts and rejects, tokens.
    assert "```yaml\nname: demo" in body and "split:\n  eval_size: 20" in body
    assert "| `sharegpt` | sharegpt |" in body and "cc-by-4.0" in body and "not declared" in body
    for stage in demo_run.body["stages"]:
        rejected = ", ".join(f"{k}: {v}" for k, v in stage["rejected"].items()) or "-"
        assert f"| `{stage['name']}` | {stage['in']} | {stage['out']} | {rejected} |" in body
    assert "## Token statistics" in body and re.search(r"\| published \| \d+ \|", body)

    # Pushing again to the same folder replaces it; another folder must be empty.
    assert main(["push", str(demo_run.out), "--repo-id", "acme/demo", "--dry-run", str(dest)]) == 0
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "keep.txt").write_text("x")
    code = main(
        ["push", str(demo_run.out), "--repo-id", "acme/demo", "--dry-run", str(tmp_path / "busy")]
    )
    assert code == 2


def test_shards_stay_under_the_size_limit(demo_run, tmp_path):
    dest = tmp_path / "hub"
    args = [
        "push",
        str(demo_run.out),
        "--repo-id",
        "acme/demo",
        "--dry-run",
        str(dest),
        "--max-shard-mb",
        "0.03",
    ]
    assert main(args) == 0
    train = sorted((dest / "data").glob("train-*.parquet"))
    assert len(train) >= 3
    n = len(train)
    assert [p.name for p in train] == [f"train-{i:05d}-of-{n:05d}.parquet" for i in range(n)]
    assert all(p.stat().st_size <= 30_000 for p in train)
    rows = sum(pq.read_metadata(p).num_rows for p in train)
    assert rows == demo_run.body["stages"][-1]["out"] - 20


def test_card_of_augmented_data_gives_model_and_cost(augmented_run, tmp_path):
    import datasets

    dest = tmp_path / "hub"
    assert (
        main(["push", str(augmented_run), "--repo-id", "acme/selfee", "--dry-run", str(dest)]) == 0
    )
    meta, body = card_yaml(dest)
    assert meta["license"] == ["mit"]
    assert "## Augmentation" in body and "| model | `gpt-3.5-turbo` |" in body
    assert "| cost (USD) |" in body and "| stop reasons | " in body
    assert "failed: 1" in body
    loaded = datasets.load_dataset(str(dest), split="train")
    assert (
        loaded.num_rows == 40 and loaded.features["outputs"].feature["feedback"].dtype == "string"
    )


def test_push_needs_a_token_and_a_finished_run(demo_run, tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.delenv("SFTFORGE_HF_TOKEN_BLOCK", raising=False)
    assert main(["push", str(demo_run.out), "--repo-id", "acme/demo"]) == 2
    assert "no Hub token" in capsys.readouterr().err
    assert main(["push", str(tmp_path), "--repo-id", "acme/demo", "--dry-run", "x"]) == 2
    assert main(["push", str(demo_run.out), "--repo-id", "demo", "--dry-run", "x"]) == 2


# ---------------------------------------------------------------- the token


class FakeHub(ThreadingHTTPServer):
    """An HF_ENDPOINT that refuses every request (401) and remembers what it was sent."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str, str]] = []
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def _refuse(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                self.rfile.read(length)
                hub.seen.append((self.command, self.path, self.headers.get("Authorization", "")))
                payload = b'{"error": "Invalid credentials in Authorization header"}'
                self.send_response(401)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_PUT = do_HEAD = _refuse  # noqa: N815

            def log_message(self, *args: object) -> None:
                pass

        super().__init__(("127.0.0.1", 0), Handler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


@pytest.fixture
def fake_hub():
    hub = FakeHub()
    thread = threading.Thread(target=hub.serve_forever, daemon=True)
    thread.start()
    try:
        yield hub
    finally:
        hub.shutdown()
        hub.server_close()


def files_containing(secret: str, *roots: Path) -> list[Path]:
    needle = secret.encode()
    found = []
    for root in roots:
        for path in Path(root).rglob("*"):
            if path.is_file() and needle in path.read_bytes():
                found.append(path)
    return found


def test_token_from_env_reaches_the_hub_and_is_written_nowhere(
    demo_run, fake_hub, tmp_path, monkeypatch, capsys
):
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    monkeypatch.setenv("HF_ENDPOINT", fake_hub.url)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    dry = tmp_path / "dry"
    assert main(["push", str(demo_run.out), "--repo-id", "acme/demo", "--dry-run", str(dry)]) == 0
    code = main(["push", str(demo_run.out), "--repo-id", "acme/demo", "--private"])
    captured = capsys.readouterr()
    assert code == 1 and "push failed" in captured.err
    # The token went to the Hub, as the credential of the request; nowhere else.
    assert fake_hub.seen and all(auth == f"Bearer {TOKEN}" for _, _, auth in fake_hub.seen)
    assert fake_hub.seen[0][:2] == ("POST", "/api/repos/create")
    assert TOKEN not in captured.out + captured.err
    assert files_containing(TOKEN, tmp_path, demo_run.out) == []


@pytest.mark.usefixtures("prefect_harness")
def test_token_from_a_prefect_secret_block(demo_run, fake_hub, tmp_path, monkeypatch, capsys):
    from prefect.blocks.system import Secret

    Secret(value=TOKEN).save("sftforge-test-hf-token", overwrite=True)
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setenv("HF_ENDPOINT", fake_hub.url)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    code = main(
        [
            "push",
            str(demo_run.out),
            "--repo-id",
            "acme/demo",
            "--token-block",
            "sftforge-test-hf-token",
        ]
    )
    captured = capsys.readouterr()
    assert code == 1
    assert fake_hub.seen and fake_hub.seen[0][2] == f"Bearer {TOKEN}"
    assert TOKEN not in captured.out + captured.err
    assert files_containing(TOKEN, tmp_path, demo_run.out) == []
    code = main(["push", str(demo_run.out), "--repo-id", "acme/demo", "--token-block", "nope"])
    assert code == 2 and "no such Prefect Secret block" in capsys.readouterr().err


@pytest.mark.skipif(not os.environ.get("HF_TOKEN"), reason="real Hub upload: set HF_TOKEN")
def test_real_upload_to_the_hub(demo_run, tmp_path):
    """Opt-in: pushes a private dataset to the Hub (or HF_ENDPOINT), loads it, deletes it."""
    import datasets
    from huggingface_hub import HfApi

    api = HfApi(endpoint=os.environ.get("HF_ENDPOINT") or None)
    owner = os.environ.get("SFTFORGE_TEST_HUB_OWNER") or api.whoami()["name"]
    repo_id = f"{owner}/sftforge-test-{uuid.uuid4().hex[:8]}"
    try:
        assert main(["push", str(demo_run.out), "--repo-id", repo_id, "--private"]) == 0
        files = api.list_repo_files(repo_id, repo_type="dataset")
        assert "README.md" in files and "data/train-00000-of-00001.parquet" in files
        loaded = datasets.load_dataset(repo_id, split="eval", cache_dir=str(tmp_path / "cache"))
        assert loaded.num_rows == 20
    finally:
        api.delete_repo(repo_id, repo_type="dataset", missing_ok=True)
