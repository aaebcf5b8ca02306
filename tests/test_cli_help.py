"""`launcher --help` and every command's --help: grouped in panels, and fast (the command
modules import no heavy library until a command runs)."""

from __future__ import annotations

import subprocess
import sys

import pytest
import typer.main

from launcher.cli import app, options
from tests.conftest import REPO, call_cli

COMMAND = typer.main.get_command(app)
COMMANDS = sorted(COMMAND.commands)

COMMAND_PANELS = {
    options.TRAIN_AND_INSPECT: ["train", "results", "plot", "tensorboard", "evaluate", "export"],
    options.CLUSTERS: ["local", "submit", "render", "status", "logs", "cancel", "list"],
    options.IMAGES_AND_CHECKS: ["doctor"],
    options.INTERNALS: ["node", "prepare"],
}
TRAINING_PANELS = [options.TRAINING, options.STOP_CRITERIA, options.RESOURCES, options.OUTPUT]
OPTION_PANELS = {
    "train": TRAINING_PANELS,
    "local": TRAINING_PANELS + [options.SWEEP, options.PLACEMENT, options.CONTAINERS],
    "submit": TRAINING_PANELS + [options.SWEEP, options.PLACEMENT, options.SLURM,
                                 options.SLURM_PER_COMPONENT, options.RUNTIME],
    "prepare": TRAINING_PANELS + [options.SWEEP, options.PLACEMENT],
}
HEAVY = ("ray", "torch", "matplotlib", "gymnasium", "tensorboard", "tensorboardX", "numpy")


def panel_titles(text: str) -> list[str]:
    """The titles of the boxes rich draws (`╭─ Title ───╮`), in order."""
    return [line.strip("╭─╮ ").rstrip("─ ") for line in text.splitlines()
            if line.startswith("╭─")]


def test_every_command_sits_in_its_panel(capsys):
    code, out, _ = call_cli(capsys, "--help")
    assert code == 0
    assert panel_titles(out) == ["Options", *COMMAND_PANELS]
    assert sorted(c for cs in COMMAND_PANELS.values() for c in cs) == COMMANDS
    for panel, names in COMMAND_PANELS.items():
        assert [COMMAND.commands[n].rich_help_panel for n in names] == [panel] * len(names)


@pytest.mark.parametrize("name", COMMANDS)
def test_every_command_help_lists_its_panels(capsys, name):
    declared = []
    for param in COMMAND.commands[name].params:
        panel = getattr(param, "rich_help_panel", None)
        if panel and panel not in declared:
            declared.append(panel)
    assert declared[:len(OPTION_PANELS.get(name, []))] == OPTION_PANELS.get(name, [])
    code, out, _ = call_cli(capsys, name, "--help")
    assert code == 0
    shown = panel_titles(out)
    assert [p for p in shown if p in declared] == declared, shown


def test_render_takes_the_options_of_submit():
    def flags(name):
        return [p.opts for p in COMMAND.commands[name].params]

    assert flags("render") == flags("submit")


def test_command_modules_import_nothing_heavy():
    """`launcher --help` and every command's --help load neither Ray nor torch."""
    probe = f"""
import sys
from launcher.cli import main
for args in [[], *[[name] for name in {COMMANDS!r}]]:
    sys.argv = ["launcher", *args, "--help"]
    try:
        main()
    except SystemExit:
        pass
print(sorted(m for m in {HEAVY!r} if m in sys.modules))
"""
    proc = subprocess.run([sys.executable, "-c", probe], cwd=REPO, capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == "[]"
