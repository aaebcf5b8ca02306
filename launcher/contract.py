"""The run directory: the only contract between the machines of a job.

A login node (or `launcher local`) writes a run directory; every node of the job reads
it, and the head writes its results back into it. Everything those machines agree on
is named here and nowhere else: file names, the node roles, the Ray resources that
place actors on roles, and the exit statuses a job script acts on.

This module sits at the bottom of the package and imports nothing of ours.

    RUN_DIR/spec.yaml          training settings (launcher/training/settings.py)
    RUN_DIR/cluster.yaml       the job's shape: nodes per role, ports, timeout
    RUN_DIR/slurm.yaml         the Slurm options a job was submitted with (for --resume)
    RUN_DIR/job.sh             the rendered Slurm job script
    RUN_DIR/slurm-job-ids      one Slurm job id per submission, newest last
    RUN_DIR/config.json        the full RLlib config, as built
    RUN_DIR/progress.csv       one row per iteration; result.json: the full results
    RUN_DIR/checkpoints/       checkpoint_NNNNNN folders, newest few kept, and best/
    RUN_DIR/run.json           how the run was made: seed, command, versions, hosts
    RUN_DIR/eval.json          the last `launcher evaluate`
    RUN_DIR/reward.png         the reward curve
    RUN_DIR/code/              the user's env code, as every node imports it
    RUN_DIR/.cluster/          mode 0700: the nodes' rendezvous
        token                  the job's Ray auth token, mode 0600
        head.json              the head's address (and "ray_up" once Ray runs)
        done.json              the head's exit status, for the other nodes
        nodes/                 one registration file per worker node
        placement.json         where env runners and learners run
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

# --- roles and the Ray resources that place actors on them ------------------------------
HEAD = "head"
ROLLOUT = "rollout"
LEARNER = "learner"
ROLES = (HEAD, ROLLOUT, LEARNER)
WORKER_ROLES = (ROLLOUT, LEARNER)
ROLLOUT_RESOURCE = "rollout_node"  # advertised by rollout nodes: one per CPU, one env runner each
LEARNER_RESOURCE = "learner_node"  # advertised by the learner node: one, for the learner actor

# --- exit statuses -----------------------------------------------------------------------
EXIT_OK = 0
EXIT_CRASH = 1
EXIT_USER_ERROR = 2  # bad input: nothing was started or submitted
EXIT_HEAD_GONE = 3  # a worker node whose head vanished or never appeared
EXIT_ENVIRONMENT = 4  # the machine lacks something (no sbatch, no Docker engine)
EXIT_INTERRUPTED = 75  # EX_TEMPFAIL: stopped by a signal after a checkpoint; resumable (requeue)

# --- file names --------------------------------------------------------------------------
SPEC_FILE = "spec.yaml"
CLUSTER_FILE = "cluster.yaml"
SLURM_OPTIONS_FILE = "slurm.yaml"
SCRIPT_FILE = "job.sh"
JOB_IDS_FILE = "slurm-job-ids"
CONFIG_FILE = "config.json"
PROGRESS_CSV = "progress.csv"
RESULT_JSON = "result.json"
REWARD_PLOT = "reward.png"
CHECKPOINT_DIR = "checkpoints"
CHECKPOINT_PREFIX = "checkpoint_"
BEST_CHECKPOINT = "best"
EVAL_FILE = "eval.json"
RUN_RECORD_FILE = "run.json"
SWEEP_FILE = "sweep.json"  # a sweep directory's record; one run directory per trial beside it
TRIAL_ERROR_FILE = "error.txt"  # a failed trial's traceback, in its run directory
CODE_DIR = "code"
STATE_DIR = ".cluster"
TOKEN_FILE = "token"
HEAD_FILE = "head.json"
DONE_FILE = "done.json"
NODES_DIR = "nodes"
PLACEMENT_FILE = "placement.json"


def job_log_name(job_id: str) -> str:
    """The Slurm job's log file in the run dir (the script asks for job-%j.log)."""
    return f"job-{job_id}.log"


@dataclass(frozen=True)
class RunPaths:
    """Every path of one run directory."""

    root: Path

    def __post_init__(self):
        object.__setattr__(self, "root", Path(self.root))

    @property
    def spec(self) -> Path:
        return self.root / SPEC_FILE

    @property
    def cluster(self) -> Path:
        return self.root / CLUSTER_FILE

    @property
    def slurm_options(self) -> Path:
        return self.root / SLURM_OPTIONS_FILE

    @property
    def script(self) -> Path:
        return self.root / SCRIPT_FILE

    @property
    def job_ids(self) -> Path:
        return self.root / JOB_IDS_FILE

    @property
    def config(self) -> Path:
        return self.root / CONFIG_FILE

    @property
    def progress(self) -> Path:
        return self.root / PROGRESS_CSV

    @property
    def result(self) -> Path:
        return self.root / RESULT_JSON

    @property
    def reward_plot(self) -> Path:
        return self.root / REWARD_PLOT

    @property
    def checkpoints(self) -> Path:
        return self.root / CHECKPOINT_DIR

    @property
    def code(self) -> Path:
        return self.root / CODE_DIR

    @property
    def best_checkpoint(self) -> Path:
        return self.checkpoints / BEST_CHECKPOINT

    @property
    def run_record(self) -> Path:
        return self.root / RUN_RECORD_FILE

    @property
    def evaluation(self) -> Path:
        return self.root / EVAL_FILE

    @property
    def state(self) -> Path:
        return self.root / STATE_DIR

    @property
    def token(self) -> Path:
        return self.state / TOKEN_FILE

    @property
    def head(self) -> Path:
        return self.state / HEAD_FILE

    @property
    def done(self) -> Path:
        return self.state / DONE_FILE

    @property
    def nodes(self) -> Path:
        return self.state / NODES_DIR

    @property
    def placement(self) -> Path:
        return self.state / PLACEMENT_FILE
