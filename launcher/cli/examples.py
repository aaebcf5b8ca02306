"""Two or three examples at the end of every command's --help (its epilog), one place for
all of them. Each is a command line that works as written (tests/test_cli_help.py parses
every one against its command's options), separated by blank lines as Typer's rich help
shows one paragraph per line.
"""

from __future__ import annotations

EXAMPLES = {
    "train": [
        "launcher train   # PPO on CartPole-v1 until it is solved",
        "launcher train --algo SAC --env Pendulum-v1 -f experiment.yaml --set lr=3e-4",
        "launcher train --resume ray_results/PPO_CartPole-v1_20261130-1200 --stop-iters 200",
    ],
    "results": [
        "launcher results ray_results/PPO_CartPole-v1_20261130-1200",
        "launcher results ray_results --record   # every run in a folder, and how it was made",
    ],
    "plot": [
        "launcher plot ray_results/run1 ray_results/run2 -o reward.png",
        "launcher plot ray_results/run1 --x time -o reward.pdf",
    ],
    "tensorboard": [
        "launcher tensorboard ray_results/run1 ray_results/run2",
        "launcher tensorboard ray_results --port 6007",
    ],
    "evaluate": [
        "launcher evaluate ray_results/PPO_CartPole-v1_20261130-1200 -n 20",
        "launcher evaluate ray_results/run1 --video videos --seed 1",
    ],
    "export": [
        "launcher export ray_results/run1 -o policy.onnx",
        "launcher export ray_results/run1 --format torchscript -o policy.pt",
    ],
    "local": [
        "launcher local --nodes 2 --env CartPole-v1   # head + 2 rollout containers",
        "launcher local --nodes 1 --gpus 1 --cpus-per-node 2 --memory 4g",
        "launcher local --resume ray_results/PPO_CartPole-v1_20261130-1200",
    ],
    "submit": [
        "launcher submit --nodes 2 --gpus 1 --env CartPole-v1 --time 02:00:00 -o /scratch/rl",
        "launcher submit --gpus 2 --gpu-type a100 --mem 64G --mail-type END,FAIL "
        "--sbatch learner:gres-flags=enforce-binding --site site.yaml",
        "launcher submit --resume /scratch/rl/PPO_CartPole-v1_20261130-1200 --time 04:00:00",
    ],
    "render": [
        "launcher render --nodes 3 --gpus 1 --partition standard --learner-partition gpu",
        "launcher render --site site.yaml --dependency afterok:1234 > job.sh",
    ],
    "status": ["launcher status 1234", "launcher status /scratch/rl/PPO_CartPole-v1_20261130-1200"],
    "logs": ["launcher logs 1234", "launcher logs 1234 --follow"],
    "cancel": ["launcher cancel 1234", "launcher cancel /scratch/rl/PPO_CartPole-v1_20261130-1200"],
    "list": ["launcher list"],
    "doctor": ["launcher doctor", "launcher doctor --for slurm --for apptainer"],
    "node": ["launcher node --run-dir /shared/runs/r1 --role head",
             "launcher node --run-dir /shared/runs/r1 --role rollout --num-cpus 8"],
    "prepare": ["launcher prepare --nodes 2 --env CartPole-v1 -o /shared/runs",
                "launcher prepare --nodes 0 --gpus 1 --job-name demo"],
}


def epilog(command: str) -> str:
    """The examples of `command` as Typer's epilog."""
    return "Examples:\n\n" + "\n\n".join(f"  {line}" for line in EXAMPLES[command])


def attach(*typer_apps) -> None:
    """Give every command registered on these Typer apps its examples."""
    for typer_app in typer_apps:
        for info in typer_app.registered_commands:
            info.epilog = epilog(info.name or info.callback.__name__)
