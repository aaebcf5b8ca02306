"""What a cluster job's head trains once every node has joined: one run into the job's
run directory, or, when the run directory holds a sweep record, the sweep's trials side
by side on the job's nodes (training/trials.py).

`node` is node.py's `Node`: its job, its log and the signal hand-off (`stops`) that
the time-limit warning and a cancel reach.
"""

from __future__ import annotations

from launcher.cluster.placement import PlacementReporter
from launcher.contract import EXIT_INTERRUPTED, EXIT_OK, RunPaths
from launcher.training.signals import BUILDING
from launcher.training.sweep_record import is_sweep_dir


def train_on_head(node, address: str) -> int:
    """Train the job (node.py's head, every node joined); return the head's exit status."""
    from launcher.results.plots import write_reward_plot
    from launcher.training.loop import train

    job, log = node.job, node.log
    settings = job.settings
    settings.address = address
    log(f"training {settings.algo} on {settings.env} -> {job.path}")
    node.stops.phase = BUILDING  # a SIGTERM / SIGINT now stops the node at once
    if node.stops.requeue:
        log(f"SIGUSR1 (time limit near) before training began; exit {EXIT_INTERRUPTED} "
            "so the job is requeued")
        return EXIT_INTERRUPTED
    if is_sweep_dir(job.path):
        return sweep_on_head(node)
    summary = train(settings, run_dir=job.path, reporter=PlacementReporter(job, log),
                    placement=job.placement, stops=node.stops)
    write_reward_plot(job.path)
    if summary.interrupted:
        log(f"interrupted ({summary.stopped_because}); checkpoint {summary.checkpoint}; "
            f"exit {EXIT_INTERRUPTED} (resumable)")
        return EXIT_INTERRUPTED
    log(f"training finished: {summary.stopped_because}")
    return EXIT_OK


def sweep_on_head(node) -> int:
    """A sweep job: its trials side by side on the job's nodes (training/trials.py);
    75 while trials are left (the requeued job continues them), 1 if some failed."""
    import ray

    from launcher.results.sweep_stats import plot_sweep
    from launcher.training.sweep_record import DONE
    from launcher.training.trials import run_sweep

    try:
        summary = run_sweep(node.job.path, stops=node.stops, placement=node.job.placement, say=node.log)
    finally:  # as a single run's trainer does: the driver leaves Ray before the node stops it
        ray.shutdown()
    node.log("sweep: " + ", ".join(f"{n} {state}" for state, n in summary.counts.items() if n)
             + f"; exit {summary.exit_status}")
    if summary.counts[DONE]:
        plot_sweep(node.job.path, RunPaths(node.job.path).reward_plot)
    return summary.exit_status
