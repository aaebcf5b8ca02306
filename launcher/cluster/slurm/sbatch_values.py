"""The values of the `#SBATCH` options a site needs beyond the launcher's own: memory,
constraints, mail, dependencies, a GPU type, and any other option through the `sbatch:`
escape hatch (`--sbatch [ROLE:]OPTION=VALUE`, a site profile's `sbatch:` list).

sbatch, not bash, reads `#SBATCH` lines, but a value still has to stay one word on one
line: every value here must match a strict pattern over its whole text (no space,
quote, `#`, `$`, backtick, `;` or newline), and options the launcher sets itself are
refused with the flag to use instead. Each check returns the value normalised, or
raises a one-line UserError.
"""

from __future__ import annotations

import re
from typing import Any

from launcher.contract import ROLES
from launcher.errors import UserError

# Slurm's --mem: a whole number, unit K, M (the default), G or T; 0 asks for all of a node's.
MEM = re.compile(r"[0-9]+[KMGTkmgt]?")
# `sbatch --help`'s --mail-type values (Slurm 22.05-26.05).
MAIL_TYPES = ("NONE", "BEGIN", "END", "FAIL", "REQUEUE", "ALL", "INVALID_DEPEND", "STAGE_OUT",
              "TIME_LIMIT", "TIME_LIMIT_90", "TIME_LIMIT_80", "TIME_LIMIT_50", "ARRAY_TASKS")
MAIL_USER = re.compile(r"[A-Za-z0-9._%+-]+(@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*)?")
# --dependency: TYPE:ID[:ID...] (after: ID+MINUTES too) or singleton, joined by ',' (all)
# or '?' (any); an ID may be an array task (123_4).
DEPENDENCY_TYPES = ("after", "afterany", "afterburstbuffer", "aftercorr", "afternotok", "afterok")
JOB_ID = r"[0-9]+(?:_[0-9]+)?"
DEPENDENCY_ITEM = re.compile(
    rf"(?:after(?::{JOB_ID}(?:\+[0-9]+)?)+|(?:{'|'.join(DEPENDENCY_TYPES[1:])})(?::{JOB_ID})+"
    r"|singleton)")
DEPENDENCY_FORMS = "afterok:ID[:ID...], afterany:ID, afternotok:ID, after:ID[+MINUTES], singleton"
# --constraint: features joined by & | , with counts (*N) and brackets.
CONSTRAINT = re.compile(r"[A-Za-z0-9_.\[\]*&|,:-]{1,256}")
# The escape hatch: a long option's name, and a value of the characters Slurm's own
# values use (node lists, sizes, times, licences, mail addresses).
OPTION_NAME = re.compile(r"[a-z][a-z0-9-]{0,63}")
OPTION_VALUE = re.compile(r"[A-Za-z0-9._+:,=@%/\[\]*&|-]{1,512}")
# Options the launcher writes itself: what to use instead (None: nothing, and why).
MANAGED = {
    "nodes": "--nodes", "ntasks": None, "ntasks-per-node": None, "cpus-per-task": "--cpus-per-node",
    "cpus-per-gpu": "--cpus-per-node", "gres": "--gpus and --gpu-type", "gpus": "--gpus",
    "gpus-per-node": "--gpus", "gpus-per-task": "--gpus", "mem": "--mem",
    "constraint": "--constraint", "reservation": "--reservation", "mail-type": "--mail-type",
    "mail-user": "--mail-user", "dependency": "--dependency", "exclusive": "--exclusive",
    "time": "--time", "job-name": "--job-name", "partition": "--partition",
    "account": "--account", "qos": "--qos", "signal": "--checkpoint-before",
    "output": None, "error": None, "open-mode": None, "requeue": None, "no-requeue": None,
    "comment": None, "chdir": None, "hetjob": None, "het-group": None, "array": None,
    "wrap": None, "parsable": None,
}
WHY_MANAGED = "the launcher sets it itself (one task per node, the log in the run directory, " \
              "requeue on the time-limit warning)"


def check_mem(value: Any, what: str = "--mem") -> str:
    text = str(value) if isinstance(value, int) and not isinstance(value, bool) else value
    if not isinstance(text, str) or not MEM.fullmatch(text):
        raise UserError(f"{what} {value!r} is not a Slurm memory size: use a whole number with "
                        "K, M, G or T, e.g. 4G or 4000M (0: all of a node's memory)")
    return text.upper()


def check_mail_type(value: Any, what: str = "--mail-type") -> str:
    types = value.split(",") if isinstance(value, str) else None
    wrong = [t for t in types or [value] if not isinstance(t, str) or t.upper() not in MAIL_TYPES]
    if wrong:
        raise UserError(f"{what} {wrong[0]!r} is not a Slurm mail type: use one or more of "
                        f"{', '.join(MAIL_TYPES)}, joined by ','")
    return ",".join(t.upper() for t in types)


def check_mail_user(value: Any, what: str = "--mail-user") -> str:
    if not isinstance(value, str) or not MAIL_USER.fullmatch(value):
        raise UserError(f"{what} {value!r} is not a user name or mail address")
    return value


def check_dependency(value: Any, what: str = "--dependency") -> str:
    text = str(value) if isinstance(value, int) and not isinstance(value, bool) else value
    if isinstance(text, str) and text.isdigit():
        text = f"afterok:{text}"  # a bare job id: start after it succeeded
    items = re.split(r"[,?]", text) if isinstance(text, str) else [None]
    mixed = isinstance(text, str) and "," in text and "?" in text
    if mixed or not all(isinstance(i, str) and DEPENDENCY_ITEM.fullmatch(i) for i in items):
        raise UserError(f"{what} {value!r} is not a Slurm dependency: use {DEPENDENCY_FORMS}, "
                        "several joined by ',' (all) or '?' (any)")
    return text


def check_constraint(value: Any, what: str = "--constraint") -> str:
    if not isinstance(value, str) or not CONSTRAINT.fullmatch(value):
        raise UserError(f"{what} {value!r} is not a Slurm constraint: node features joined by "
                        "& | or ',', e.g. a100 or 'intel&ib'")
    return value


def managed_instead(name: str) -> str | None:
    """Why `--sbatch NAME=...` is refused (an option of the launcher's, or an abbreviation
    sbatch would read as one), or None."""
    exact = [name] if name in MANAGED else []
    for managed in exact + [m for m in MANAGED if m.startswith(name)]:
        flag = MANAGED[managed]
        option = "" if managed == name else f" (sbatch reads it as --{managed})"
        use = f"use {flag}" if flag else WHY_MANAGED
        return f"--{name}{option} is an option of the launcher's own: {use}"
    return None


def check_sbatch_option(value: Any, what: str = "--sbatch") -> str:
    """`OPTION=VALUE`, `--OPTION=VALUE` or `OPTION` -> `OPTION=VALUE` / `OPTION`."""
    if not isinstance(value, str):
        raise UserError(f"{what} entry {value!r} must be text: OPTION=VALUE, e.g. gres-flags="
                        "enforce-binding")
    name, equals, option_value = value.removeprefix("--").partition("=")
    if not OPTION_NAME.fullmatch(name):
        raise UserError(f"{what} {value!r}: give a long sbatch option as OPTION=VALUE (lower-case "
                        "letters, digits and '-'), e.g. gres-flags=enforce-binding")
    why = managed_instead(name)
    if why:
        raise UserError(f"{what} {value!r}: {why}")
    if equals and not OPTION_VALUE.fullmatch(option_value):
        raise UserError(f"{what} {value!r}: the value may hold letters, digits and . _ + : , = @ "
                        "% / [ ] * & | - only (no spaces, quotes or shell characters)")
    return f"{name}={option_value}" if equals else name


def check_sbatch_options(value: Any, what: str = "sbatch") -> list[str]:
    if not isinstance(value, list):
        raise UserError(f"{what} must be a list of OPTION=VALUE, got {value!r}")
    return [check_sbatch_option(item, what) for item in value]


def split_role(entry: str) -> tuple[str | None, str]:
    """`--sbatch learner:gres-flags=enforce-binding` -> ('learner', 'gres-flags=...')."""
    role, colon, rest = entry.partition(":")
    if colon and role in ROLES:
        return role, rest
    return None, entry


def merged(options: list[str]) -> list[str]:
    """One entry per option, the last given winning (a flag over the site profile)."""
    by_name: dict[str, str] = {}
    for entry in options:
        name = entry.partition("=")[0]
        by_name.pop(name, None)
        by_name[name] = entry
    return list(by_name.values())
