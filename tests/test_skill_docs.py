"""SKILL.md, README and examples stay true to the code."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from twilio_caller import config
from twilio_caller.manifest import invoke, load_manifest
from twilio_caller.runtime import Runtime

ROOT = Path(__file__).resolve().parents[1]


def frontmatter(path: Path) -> dict:
    text = path.read_text(encoding="utf-8")
    match = re.match(r"^---\n(.*?)\n---\n", text, re.S)
    assert match, "SKILL.md must start with YAML frontmatter"
    return yaml.safe_load(match.group(1))


def test_skill_md_frontmatter_follows_the_agentskills_rules() -> None:
    meta = frontmatter(ROOT / "SKILL.md")
    assert meta["name"] == "twilio-caller"
    assert re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", meta["name"]) and len(meta["name"]) <= 64
    assert 1 <= len(meta["description"]) <= 1024
    openclaw = meta["metadata"]["openclaw"]
    assert openclaw["primaryEnv"] == "TWILIO_AUTH_TOKEN"
    assert "python3" in openclaw["requires"]["bins"]


def test_skill_md_passes_the_agentskills_reference_validator(tmp_path: Path) -> None:
    skill_dir = tmp_path / "twilio-caller"  # the validator wants the folder named as the skill
    skill_dir.mkdir()
    shutil.copy(ROOT / "SKILL.md", skill_dir / "SKILL.md")
    cli = Path(sys.executable).with_name("agentskills")
    done = subprocess.run([str(cli), "validate", str(skill_dir)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "Valid skill" in done.stdout


def test_skill_md_frontmatter_is_block_style_yaml() -> None:
    text = (ROOT / "SKILL.md").read_text(encoding="utf-8")
    head = text.split("\n---\n", 1)[0]
    assert not re.search(r":\s*[\[{]", head), "flow-style YAML is rejected by strict parsers"


def test_credentials_are_declared_without_hiding_the_skill() -> None:
    openclaw = frontmatter(ROOT / "SKILL.md")["metadata"]["openclaw"]
    assert "env" not in openclaw["requires"]  # simulate mode and the demo need no credentials
    env_vars = {var["name"]: var for var in openclaw["envVars"]}
    for name in ("TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN"):
        assert env_vars[name]["required"] is False
        assert "real calls" in env_vars[name]["description"]
    assert openclaw["primaryEnv"] in env_vars


def test_skill_md_carries_the_publishing_fields() -> None:
    meta = frontmatter(ROOT / "SKILL.md")
    from twilio_caller import __version__

    assert meta["license"] and meta["compatibility"]
    assert meta["metadata"]["version"] == __version__
    openclaw = meta["metadata"]["openclaw"]
    assert openclaw["emoji"] and openclaw["os"]
    assert all(step["bins"] == ["python3"] for step in openclaw["install"])


def test_skill_md_declares_every_environment_variable_the_code_reads() -> None:
    declared = {var["name"] for var in frontmatter(ROOT / "SKILL.md")["metadata"]["openclaw"]["envVars"]}
    from twilio_caller.invocation import SIMULATE_ENV

    read = set(config.environment_keys()) | {config.HOME_ENV, SIMULATE_ENV}
    assert read <= declared


def test_skill_md_explains_every_tool() -> None:
    body = (ROOT / "SKILL.md").read_text(encoding="utf-8")
    for name in load_manifest().tools:
        assert f"`{name}`" in body


def test_readme_quick_start_has_exactly_the_two_commands() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```sh\n(.*?)```", section, re.S).group(1)
    commands = [line for line in block.splitlines() if line.strip()]
    assert len(commands) == 2
    assert commands[0].startswith("bin/twilio-caller ")
    assert commands[1] == "bin/test"
    assert "bin/test" in (ROOT / ".ci" / "run").read_text()


def test_the_example_config_is_valid(home: Path) -> None:
    home.mkdir(parents=True)
    (home / "config.yaml").write_text((ROOT / "examples" / "config.example.yaml").read_text())
    loaded = config.load_config(home, {})
    assert loaded.get("safety.calling_hours") == "07:00-23:00"
    assert loaded.get("safety.timezone") == "America/Chicago"
    assert loaded.get("voice.default") == "Polly.Brian"


def test_the_example_contacts_import(runtime: Runtime) -> None:
    result = invoke("import_contacts", {"path": str(ROOT / "examples" / "contacts.csv")}, runtime)
    assert len(result["imported"]) == 8
    assert {c["name"] for c in result["imported"]} >= {"Contact1", "Contact7"}


@pytest.mark.parametrize("doc", ["README.md", "SKILL.md"])
def test_commands_named_in_the_docs_exist(doc: str) -> None:
    from twilio_caller.cli import build_parser

    commands = set(build_parser()._subparsers._group_actions[0].choices)  # noqa: SLF001
    text = (ROOT / doc).read_text(encoding="utf-8")
    used = set(re.findall(r"twilio-caller (?:tool )?([a-z][a-z_-]+)", text))
    used |= set(re.findall(r"^\| `([a-z]+)[ `]", text, re.M))  # the README's command table
    tools = set(load_manifest().tools)
    assert used - commands - tools == set()
