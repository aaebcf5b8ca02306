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


def test_render_takes_the_options_of_submit_but_dry_run(capsys):
    def flags(name):
        return [p.opts for p in COMMAND.commands[name].params]

    assert flags("render") == [f for f in flags("submit") if f != ["--dry-run"]]
    assert ["--dry-run"] in flags("submit")
    code, out, _ = call_cli(capsys, "render", "--help")
    assert code == 0 and "--dry-run" not in out


def options_by_name() -> dict[str, list[tuple[str, object]]]:
    """Every option name (long and short) -> (command, click parameter) for each use."""
    found: dict[str, list] = {}
    for name in COMMANDS:
        for param in COMMAND.commands[name].params:
            for flag in [*param.opts, *param.secondary_opts]:
                if flag.startswith("-"):
                    found.setdefault(flag, []).append((name, param))
    return found


def test_one_flag_name_means_one_thing_across_commands():
    """A short flag stands for one long option everywhere (-f is --config, never
    --follow); a long option has one type and one help text wherever it appears (the
    shared ones), so --gpus and --nodes mean the same in local, submit and prepare."""
    found = options_by_name()
    for flag, uses in found.items():
        if flag.startswith("--"):
            continue
        longs = {[o for o in p.opts if o.startswith("--")][0] for _, p in uses}
        assert len(longs) == 1, f"{flag} means {longs} ({[c for c, _ in uses]})"
    assert {c for c, _ in found["-f"]} >= {"train", "local", "submit", "prepare"}
    assert "-f" not in [o for p in COMMAND.commands["logs"].params for o in p.opts]
    for flag in ("--nodes", "--gpus"):
        uses = [(c, p) for c, p in found[flag] if c in ("local", "submit", "render", "prepare")]
        assert len(uses) == 4, uses
        assert {p.type_descriptor.annotation for _, p in uses} == {int}, flag
        assert len({p.help for _, p in uses}) == 1, flag
        shorts = {c for c, p in uses if "-N" in p.opts}
        assert shorts == ({"local", "submit", "render", "prepare"} if flag == "--nodes" else set())


def test_fixed_choices_are_listed_and_a_wrong_one_is_one_line(capsys):
    from tests.conftest import assert_one_line_error

    for command, flag, shown in [("train", "--algo", "[PPO|APPO|IMPALA|DQN|SAC]"),
                                 ("train", "--framework", "[torch|tf2]"),
                                 ("submit", "--runtime", "[apptainer|none]"),
                                 ("node", "--role", "[head|rollout|learner]"),
                                 ("doctor", "--for", "[train|local|slurm|apptainer|gpu]"),
                                 ("plot", "--x", "[env_steps|iteration|time]"),
                                 ("export", "--format", "[onnx|torchscript]")]:
        param, = [p for p in COMMAND.commands[command].params if flag in p.opts]
        assert param.metavar == shown, (command, flag, param.metavar)
    code, _, err = call_cli(capsys, "doctor", "--for", "slurmm")
    assert_one_line_error(code, err, "unknown mode 'slurmm' for --for", "did you mean 'slurm'")
    code, _, err = call_cli(capsys, "submit", "--runtime", "docker")
    assert_one_line_error(code, err, "unknown runtime 'docker'; valid: apptainer, none")


def test_export_formats_offered_are_the_exporters():
    from launcher.cli.agents import EXPORT_FORMATS
    from launcher.results.export import FORMATS

    assert tuple(FORMATS) == EXPORT_FORMATS


VALUE_METAVARS = {"--set": "KEY=VALUE", "--env-config": "KEY=VALUE", "--resume": "RUN_DIR",
                  "--run-dir": "RUN_DIR", "--time": "[D-]HH:MM:SS", "--config": "FILE",
                  "--output": "DIR|FILE", "--sbatch": "[ROLE:]OPTION=VALUE", "--mem": "SIZE"}


def test_metavars_say_what_goes_there():
    """Every option that takes a value names what it takes (no bare TEXT / INTEGER)."""
    for flag, uses in options_by_name().items():
        for command, param in uses:
            if param.is_flag or not flag.startswith("--"):
                continue
            assert param.metavar, f"{command} {flag} has no metavar"
            if flag in VALUE_METAVARS:
                assert param.metavar in VALUE_METAVARS[flag].split("|") or \
                    param.metavar == VALUE_METAVARS[flag], (command, flag, param.metavar)


def example_lines(command: str) -> list[list[str]]:
    import shlex

    from launcher.cli.examples import EXAMPLES

    out = []
    for line in EXAMPLES[command]:
        words = shlex.split(line, comments=True)
        out.append(words[2:words.index(">")] if ">" in words else words[2:])
        assert words[:2] == ["launcher", command], line
    return out


@pytest.mark.parametrize("name", COMMANDS)
def test_every_command_ends_its_help_with_examples_that_parse(capsys, name):
    """Two or three examples (one for a command without options), each accepted by the
    command's own parser as written."""
    command = COMMAND.commands[name]
    examples = example_lines(name)
    takes_options = any(p.opts[0] not in ("--help",) for p in command.params)
    assert (2 if takes_options else 1) <= len(examples) <= 3, name
    for args in examples:
        command.make_context(name, list(args))  # raises on an unknown option or a bad value
    code, out, _ = call_cli(capsys, name, "--help")
    assert code == 0 and "Examples:" in out


def test_shell_completion_is_offered(capsys):
    code, out, _ = call_cli(capsys, "--help")
    assert code == 0 and "--install-completion" in out and "--show-completion" in out


def readme_table(heading: str) -> list[list[str]]:
    """The rows of the first table after `heading` in README.md, cells stripped."""
    text = (REPO / "README.md").read_text().split(heading, 1)[1]
    rows, started = [], False
    for line in text.splitlines():
        if line.startswith("|"):
            started = True
            rows.append([cell.strip() for cell in line.strip("|").split("|")])
        elif started:
            break
    return rows[2:]


def test_the_readme_command_table_matches_the_help():
    rows = readme_table("## Commands")
    assert [r[0].strip("`") for r in rows] == [c for cs in COMMAND_PANELS.values() for c in cs]
    for name, text in ((r[0].strip("`"), r[1]) for r in rows):
        assert text == COMMAND.commands[name].get_short_help_str(limit=300), name


def test_the_readme_train_option_table_matches_the_help():
    """Every option of `launcher train` is in README's table, and every flag there exists."""
    import re

    documented = {flag for row in readme_table("## Training locally")
                  for flag in re.findall(r"(?<![\w-])(--?[a-z][a-z-]*)", row[0])}
    train = {flag for p in COMMAND.commands["train"].params for flag in p.opts} - {"--help", "-h"}
    assert documented == train, (sorted(train - documented), sorted(documented - train))


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


def test_defaults_are_shown_one_way():
    """A default is Typer's `[default: ...]`, never written into the help text as well."""
    import re

    for name in COMMANDS:
        for param in COMMAND.commands[name].params:
            text = getattr(param, "help", None) or ""
            assert not re.search(r"\(default[ :]", text), (name, param.opts, text)
