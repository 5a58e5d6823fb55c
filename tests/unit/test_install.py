"""An install that finds its catalog (issue 27): which .env is read, no empty catalog made by mistake,
.env.example as shipped, and the lines `dogbot run` and `dogbot api` print once they are ready."""

from __future__ import annotations

import asyncio
import os
import socket
from pathlib import Path

import pytest
import uvicorn

from api.app import ReadyServer, ready_line
from bot.app import ready_line as bot_ready_line
from dogbot import cli, settings
from dogbot.app import CatalogMissing, Container
from dogbot.settings import EnvFileMissing, Settings, env_file, load_settings

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def clean_env(monkeypatch, tmp_path):
    """No DOGBOT_* variable from the developer's shell, and an install folder without a .env."""
    for name in list(os.environ):
        if name.startswith("DOGBOT_"):
            monkeypatch.delenv(name)
    install = tmp_path / "install"
    install.mkdir()
    monkeypatch.setattr(settings, "INSTALL_DIR", install)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    return install, elsewhere


def test_env_file_order_named_then_current_folder_then_install(clean_env, monkeypatch, tmp_path):
    install, elsewhere = clean_env
    assert env_file() is None
    (install / ".env").write_text("DOGBOT_DATA_DIR=shelter\n")
    assert env_file() == install / ".env"  # cron runs from another folder: the install's .env
    (elsewhere / ".env").write_text("DOGBOT_DATA_DIR=here\n")
    assert env_file() == elsewhere / ".env"
    named = tmp_path / "prod.env"
    named.write_text("DOGBOT_DATA_DIR=/srv/dogbot\n")
    monkeypatch.setenv("DOGBOT_ENV_FILE", str(named))
    assert env_file() == named
    monkeypatch.setenv("DOGBOT_ENV_FILE", os.devnull)  # "no .env at all", for tests and containers
    assert env_file() == Path(os.devnull) and load_settings().data_dir == elsewhere / "data"
    monkeypatch.setenv("DOGBOT_ENV_FILE", str(tmp_path / "typo.env"))
    with pytest.raises(EnvFileMissing, match="typo.env"):
        env_file()  # never another file instead: that could be another shelter's catalog


def test_relative_data_dir_is_taken_from_the_env_files_folder(clean_env):
    install, elsewhere = clean_env
    (install / ".env").write_text("DOGBOT_DATA_DIR=data\nDOGBOT_BACKBONE_DIR=cache/backbones\n")
    loaded = load_settings()
    assert loaded.data_dir == install / "data"
    assert loaded.serving_backbone_dir == install / "cache/backbones"


def test_env_example_as_shipped_gives_the_defaults(clean_env):
    shipped = Settings(_env_file=ROOT / ".env.example").model_dump()
    defaults = Settings(_env_file=None).model_dump()
    assert {k: (shipped[k], v) for k, v in defaults.items() if shipped[k] != v} == {}
    copied = Settings(_env_file=ROOT / ".env.example")
    # `DOGBOT_BACKBONE_DIR=` once meant Path(""): the 18 MB export landed in the current folder.
    assert copied.serving_backbone_dir == Path("data") / "backbones"


@pytest.mark.parametrize(
    "argv",
    [
        ["backup", "out.tar.gz"],
        ["export"],
        ["drift"],
        ["models"],
        ["asm", "status"],
        ["db", "current"],
        ["api-token", "list"],
    ],
)
def test_commands_that_read_the_catalog_refuse_to_make_an_empty_one(clean_env, capsys, monkeypatch, argv):
    install, elsewhere = clean_env
    monkeypatch.setenv("DOGBOT_ASM_URL", "http://asm.invalid")  # set up, so `asm status` reads the catalog
    monkeypatch.setenv("DOGBOT_ASM_KEY", "key")
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert f"no catalog at {elsewhere / 'data' / 'dogbot.db'}" in err
    assert not (elsewhere / "data").exists() and not (elsewhere / "out.tar.gz").exists()


def test_the_install_catalog_is_found_from_another_folder(clean_env, capsys):
    install, elsewhere = clean_env
    (install / ".env").write_text("DOGBOT_DATA_DIR=data\n")
    Container(Settings(_env_file=None, data_dir=install / "data")).engine.dispose()  # an existing catalog
    assert cli.main(["api-token", "list"]) == 0
    assert not (elsewhere / "data").exists()


def test_a_container_told_not_to_create_refuses(tmp_path):
    container = Container(Settings(_env_file=None, data_dir=tmp_path / "data"), create_catalog=False)
    with pytest.raises(CatalogMissing):
        _ = container.engine
    assert not (tmp_path / "data").exists()


def test_api_prints_one_line_once_listening(capsys):
    async def app(scope, receive, send):  # nothing is asked of it: the line comes at start-up
        raise AssertionError

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = ReadyServer(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off"),
        ready_line("127.0.0.1", port),
    )

    async def serve_then_stop():
        task = asyncio.create_task(server.serve())
        for _ in range(200):
            if server.started:
                break
            await asyncio.sleep(0.02)
        server.should_exit = True
        await task

    asyncio.run(serve_then_stop())
    out = capsys.readouterr().out.splitlines()
    url = f"http://127.0.0.1:{port}"
    assert out == [f"web API listening on {url} (documentation: {url}/docs; Ctrl-C stops)"]


def test_bot_ready_line_names_the_bot_and_mode_but_not_the_secret_path():
    assert "@shelter_bot; polling" in bot_ready_line("shelter_bot", "", "0.0.0.0", 8443)
    line = bot_ready_line("shelter_bot", "https://bots.example.org/hook-5f3a9c1e77d2", "0.0.0.0", 8443)
    assert "webhook for bots.example.org, listening on 0.0.0.0:8443" in line
    assert "hook-5f3a9c1e77d2" not in line
